"""The quantizer options of the course material, as Brevitas quantizers chosen by config.

Weight options (config `model.weight.quant`):
  binary             sign(w) with the clipped straight-through estimator (hard-tanh STE:
                     the gradient passes where |w| <= 1 and is zero outside), scale 1
  binary_ste         sign(w) with the plain identity STE (no clipping of the gradient)
  binary_stochastic  stochastic binarization while training: +1 with probability
                     hard_sigmoid(w) = clip((w + 1) / 2, 0, 1), i.e. sign(w + U(-1, 1));
                     deterministic sign at evaluation and export
  binary_xnor        XNOR-Net: sign(w) times a per-output-channel scale alpha = mean |w|
                     (per tensor with per_channel: false)
  ternary            {-1, 0, +1} x scale (INT2 narrow), scale from mean |w| (TWN-like)
  int                INTn symmetric (narrow range), scale from max |w|
  int_asym           UINTn with a zero point (affine), scale from min/max
  lsq                INTn symmetric with a learned step size (Brevitas PARAMETER scaling,
                     initialised from statistics), as in LSQ
  dorefa             DoReFa-Net k-bit weights: r = tanh(w) / max|tanh(w)| (per tensor), then
                     2^k uniform levels on [-1, 1] with a straight-through round; the levels
                     are odd integers c = 2n - (2^k - 1) times a scale (INT(k+1) codes: the
                     IR has no half-integer zero point), scale 1/(2^k - 1) as in the paper
                     (po2: false) or 2^-k (po2: true, the default; the batch norm that
                     follows every layer absorbs the constant factor)
  wage               WAGE k_W-bit weights: Q(C(w)) = clip(round(w / s) s, -1 + s, 1 - s),
                     s = 2^(1 - k_W), identity STE; the stored weights live on the
                     grad_bits grid and are updated by WAGE's rule (flow.train.lowprec.WageSGD)
  fixed              Gupta et al.'s fixed-point weights <IL, FL>: bits = WL, frac_bits = FL,
                     scale 2^-FL, two's complement range; the stored weights are rounded to
                     the grid after every update, stochastically or to nearest (`rounding`)
Activation options (config `model.act.quant`):
  binary             sign(x) with hard-tanh STE, scale 1
  binary_stochastic  stochastic sign while training, deterministic at evaluation
  int                INTn symmetric in [-max, max] (hard-tanh like), const scale; or with
                     scaling: stats, Brevitas' Int8ActPerTensorFloat (a learned scale
                     initialised from percentile statistics; po2: its fixed-point kin)
  uint               UINTn in [0, max] (quantized ReLU); scaling: stats as for int
                     (Uint8ActPerTensorFloat)
  int_asym           UINTn with a zero point over [min, max] (affine)
  lsq                UINTn ReLU with a learned step size
  dorefa             DoReFa-Net: quantize_k(clip(x, 0, 1)), scale 1/(2^k - 1) (po2: false,
                     the paper) or 2^-k (po2: true, the default)
  wage               WAGE: ReLU, then Q(C(x), k_A) (signed grid, step 2^(1 - k_A), clip
                     gradient zero outside); the model puts the ReLU before it
Common keys: bits (1..8), per_channel (weights), po2 (scales restricted to powers of two,
so the float graph is exact and the integer pipeline matches it bit for bit; default on,
except where the option is a float scale by definition: binary_xnor, lsq).
"""

from __future__ import annotations

from typing import Any

import torch
from brevitas.core.function_wrapper import TensorClamp
from brevitas.core.quant import ClampedBinaryQuant
from brevitas.core.quant.binary import BinaryQuant
from brevitas.core.restrict_val import RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.function.ops_ste import binary_sign_ste
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    ShiftedUint8ActPerTensorFloat,
    ShiftedUint8WeightPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import Tensor

from flow.train.lowprec import dorefa_step, wage_sigma

WEIGHT_OPTIONS = ("binary", "binary_ste", "binary_stochastic", "binary_xnor", "ternary",
                  "int", "int_asym", "lsq", "dorefa", "wage", "fixed")
ACT_OPTIONS = ("binary", "binary_stochastic", "int", "uint", "int_asym", "lsq", "dorefa", "wage")
DEFAULT_BITS = {"ternary": 2, "dorefa": 2, "wage": 2, "fixed": 8}
DEFAULT_ACT_BITS = {"wage": 8}


class QuantConfigError(ValueError):
    """An unknown or inconsistent quantizer option; names the config key."""


class StochasticBinaryQuant(ClampedBinaryQuant):
    """Clamped binary quantizer whose sign is stochastic while training.

    sign(clamp(x) + U(-scale, scale)) is +scale with probability (x/scale + 1) / 2, the
    hard sigmoid of the course material; gradients pass straight through the clamp window.
    Evaluation (and so export) is the deterministic sign.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if not self.training:
            return super().forward(x)
        scale = self.scaling_impl(x)
        y = self.tensor_clamp_impl(x, -scale, scale)
        noise = (torch.rand_like(y) * 2 - 1) * scale
        y = binary_sign_ste(y + noise.detach()) * scale
        return y, scale, self.zero_point(), self.bit_width()


def _po2(enabled: bool) -> dict[str, Any]:
    return {"restrict_scaling_type": RestrictValueType.POWER_OF_TWO if enabled
            else RestrictValueType.FP}


def weight_quant(spec: dict[str, Any], where: str = "model.weight") -> type:
    """A Brevitas weight quantizer for a config section."""
    kind = spec.get("quant", "binary")
    bits = int(spec.get("bits", 1 if kind.startswith("binary") else DEFAULT_BITS.get(kind, 4)))
    per_channel = bool(spec.get("per_channel", kind == "binary_xnor"))
    po2 = bool(spec.get("po2", kind not in ("binary_xnor", "lsq")))
    if kind not in WEIGHT_OPTIONS:
        raise QuantConfigError(f"{where}.quant: {kind!r} is not one of {', '.join(WEIGHT_OPTIONS)}")
    if not 1 <= bits <= 8:
        raise QuantConfigError(f"{where}.bits: {bits} is outside 1..8")
    binary = {"scaling_const": 1.0}
    if kind == "binary":
        return SignedBinaryWeightPerTensorConst.let(**binary, tensor_clamp_impl=TensorClamp)
    if kind == "binary_ste":
        return SignedBinaryWeightPerTensorConst.let(**binary, tensor_quant=BinaryQuant)
    if kind == "binary_stochastic":
        return SignedBinaryWeightPerTensorConst.let(**binary, tensor_clamp_impl=TensorClamp,
                                                    tensor_quant=StochasticBinaryQuant)
    if kind == "binary_xnor":
        return SignedBinaryWeightPerTensorConst.let(
            tensor_clamp_impl=TensorClamp, scaling_impl_type=ScalingImplType.STATS,
            scaling_stats_op=StatsOp.AVE, scaling_per_output_channel=per_channel, **_po2(po2))
    if kind == "dorefa":  # the parametrization (dorefa_weight) puts w on the odd-code grid
        return _const_int_weight(bits + 1, dorefa_step(bits, po2), narrow=True)
    if bits < 2:
        raise QuantConfigError(f"{where}.bits: {kind} needs at least 2 bits")
    if kind == "wage":
        return _const_int_weight(bits, wage_sigma(bits), narrow=True)
    if kind == "fixed":
        if "frac_bits" not in spec:
            raise QuantConfigError(f"{where}.frac_bits: fixed-point weights need a fraction length")
        return _const_int_weight(bits, 2.0 ** -int(spec["frac_bits"]), narrow=False)
    common = {"bit_width": bits, "scaling_per_output_channel": per_channel, **_po2(po2)}
    if kind == "ternary":
        return Int8WeightPerTensorFloat.let(**{**common, "bit_width": 2},
                                            scaling_stats_op=StatsOp.AVE)
    if kind == "int":
        return Int8WeightPerTensorFloat.let(**common)
    if kind == "lsq":
        return Int8WeightPerTensorFloat.let(
            **common, scaling_impl_type=ScalingImplType.PARAMETER_FROM_STATS)
    return ShiftedUint8WeightPerTensorFloat.let(**common)  # int_asym


def _const_int_weight(bits: int, scale: float, narrow: bool) -> type:
    """INTn weights with one constant scale (Brevitas divides the constant by the largest
    code, 2^(n-1) - narrow)."""
    return Int8WeightPerTensorFloat.let(
        bit_width=bits, narrow_range=narrow, scaling_impl_type=ScalingImplType.CONST,
        scaling_const=scale * (2 ** (bits - 1) - int(narrow)),
        restrict_scaling_type=RestrictValueType.FP)


def act_quant(spec: dict[str, Any], where: str = "model.act", calibrate: bool = False) -> type:
    """A Brevitas activation quantizer for a config section; `calibrate` gives multi-bit
    quantizers a scale learned from statistics (post-training calibration)."""
    kind = spec.get("quant", "binary")
    bits = int(spec.get("bits", 1 if kind.startswith("binary") else DEFAULT_ACT_BITS.get(kind, 4)))
    po2 = bool(spec.get("po2", kind != "lsq"))
    max_val = float(spec.get("max_val", 1.0 if kind in ("binary", "int") else 4.0))
    if kind not in ACT_OPTIONS:
        raise QuantConfigError(f"{where}.quant: {kind!r} is not one of {', '.join(ACT_OPTIONS)}")
    if not 1 <= bits <= 8:
        raise QuantConfigError(f"{where}.bits: {bits} is outside 1..8")
    if kind == "binary":
        return SignedBinaryActPerTensorConst.let(scaling_const=1.0)
    if kind == "binary_stochastic":
        return SignedBinaryActPerTensorConst.let(scaling_const=1.0,
                                                 tensor_quant=StochasticBinaryQuant)
    if bits < 2 and kind != "uint":
        raise QuantConfigError(f"{where}.bits: {kind} needs at least 2 bits")
    if kind == "dorefa":  # quantize_k(clip(x, 0, 1)): 2^k - 1 steps of one constant size
        top = dorefa_step(bits, po2) * (2**bits - 1)  # Brevitas' constant is the range's top
        return Uint8ActPerTensorFloat.let(
            bit_width=bits, scaling_impl_type=ScalingImplType.CONST, max_val=top,
            scaling_const=top, restrict_scaling_type=RestrictValueType.FP)
    if kind == "wage":  # Q(C(x), k): signed, step 2^(1-k), clipped at +-(1 - step)
        top = wage_sigma(bits) * (2 ** (bits - 1) - 1)
        return Int8ActPerTensorFloat.let(
            bit_width=bits, narrow_range=True, scaling_impl_type=ScalingImplType.CONST,
            scaling_const=top, min_val=-top, max_val=top,
            restrict_scaling_type=RestrictValueType.FP)
    common = {"bit_width": bits, **_po2(po2)}
    if (calibrate or spec.get("scaling") == "stats") and kind in ("int", "uint"):
        # Brevitas' learned scale from percentile statistics (collected while training, or
        # in calibration mode): Int8ActPerTensorFloat / Uint8ActPerTensorFloat at these bits
        base = Int8ActPerTensorFloat if kind == "int" else Uint8ActPerTensorFloat
        return base.let(**common)
    if kind == "int":
        # constant range [-max, max]: with po2 the step is a power of two
        return Int8ActPerTensorFloat.let(**common, min_val=-max_val, max_val=max_val,
                                         scaling_impl_type=ScalingImplType.CONST,
                                         scaling_const=max_val, narrow_range=True)
    if kind == "uint":
        return Uint8ActPerTensorFloat.let(**common, max_val=max_val,
                                          scaling_impl_type=ScalingImplType.CONST,
                                          scaling_const=max_val)
    if kind == "lsq":
        return Uint8ActPerTensorFloat.let(**common, max_val=max_val,
                                          scaling_impl_type=ScalingImplType.PARAMETER,
                                          zero_point_impl=ZeroZeroPoint)
    return ShiftedUint8ActPerTensorFloat.let(**common)  # int_asym
