"""The model zoo: Brevitas MLPs and CNNs of any depth, width and bit width, FINN's
TFC/SFC/LFC and CNV among them.

Layer pattern (FINN's BNN-PYNQ): input quantizer; for a CNN, per convolution
QuantConv2d (no bias) -> BatchNorm2d -> activation quantizer, with 2x2 max pools after
the activation quantizers where `convs` says "pool" (max commutes with the quantizer, so
pooling codes is exact), then a flatten; per hidden layer QuantLinear (no bias) ->
BatchNorm1d -> activation quantizer -> dropout; then a last QuantLinear and a per-class
affine BatchNorm1d that scales the logits for the loss.

The low-precision training methods (flow/train/lowprec.py) change the pattern where they say
so: DoReFa weights are a parametrization of each layer's weight (tanh normalization), a
`model.grad` quantizer sits after each weighted op (DoReFa: its output's gradient) or after
each activation quantizer (WAGE: the error), and WAGE replaces every batch norm by a
constant shift scaling and puts a ReLU before its activation quantizer.
"""

from __future__ import annotations

from typing import Any

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn
from torch.nn.utils import parametrize

from flow.train import lowprec
from flow.train.quantizers import DEFAULT_BITS, act_quant, weight_quant

# FINN's topologies (BNN-PYNQ / finn-examples): hidden widths, and CNV's convolutions
# (3x3, unpadded, on 32x32 inputs) with its pools
TOPOLOGIES: dict[str, dict[str, Any]] = {
    "tfc": {"hidden": [64, 64, 64]}, "sfc": {"hidden": [256, 256, 256]},
    "lfc": {"hidden": [1024, 1024, 1024]},
    "cnv": {"convs": [64, 64, "pool", 128, 128, "pool", 256, 256], "padding": 0,
            "hidden": [512, 512]},
}
DEFAULT_HIDDEN = [64, 64]


def topology(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's layer lists (hidden, convs, padding), from its topology when it names one."""
    topo = spec.get("topology")
    if topo is not None:
        if topo not in TOPOLOGIES:
            raise ValueError(f"model.topology: {topo!r} is not one of {', '.join(TOPOLOGIES)}")
        return {"convs": [], "padding": 1, **TOPOLOGIES[topo], "kernel": 3}
    hidden = spec.get("hidden", DEFAULT_HIDDEN)
    if not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ValueError(f"model.hidden: expected a list of positive widths, got {hidden!r}")
    return {"hidden": list(hidden), "convs": list(spec.get("convs") or []),
            "padding": int(spec.get("padding", 1)), "kernel": int(spec.get("kernel", 3))}


class QuantNet(nn.Module):
    def __init__(self, spec: dict[str, Any], input_shape: tuple[int, ...], classes: int,
                 quantized: bool = True, calibrate: bool = False) -> None:
        super().__init__()
        in_spec = spec.get("input", {"quant": "uint", "bits": 8, "max_val": 1.0})
        w_spec = spec.get("weight", {"quant": "binary"})
        a_spec = spec.get("act", {"quant": "binary"})
        last_spec = spec.get("last_weight", w_spec)
        dropout = float(spec.get("dropout", 0.0))
        grad = spec.get("grad") if quantized else None
        wage = quantized and w_spec.get("quant") == "wage"
        # weights rounded to a fixed-point grid after every update: (layer, WL, FL, rounding)
        self.fixed_point: list[tuple[QuantLinear | QuantConv2d, int, int, lowprec.Rounding]] = []
        self.wage_grad_bits = int(w_spec.get("grad_bits", 8))
        # the randomness of weight updates (stochastic rounding): one stream on every rank
        self.update_rng = torch.Generator().manual_seed(torch.initial_seed())
        # bipolar inputs are centred as in BNN-PYNQ: x in [0, 1] -> 2x - 1 in [-1, 1]
        self.center = in_spec.get("quant") in ("binary", "int")
        shape = topology(spec)

        def act(s: dict[str, Any], where: str) -> list[nn.Module]:
            if not quantized:
                relu = s.get("quant") in ("uint", "lsq", "int_asym", "dorefa", "wage")
                return [nn.ReLU() if relu else nn.Hardtanh()]
            q = [QuantIdentity(act_quant=act_quant(s, where, calibrate), return_quant_tensor=False)]
            return [nn.ReLU(), *q] if s.get("quant") == "wage" else q

        def after_act() -> list[nn.Module]:
            return [lowprec.BackwardQuant("wage", grad["bits"])] if grad and grad["quant"] == "wage" else []

        def weighted(layer: QuantLinear | QuantConv2d, s: dict[str, Any], fan_in: int, width: int,
                     norm: type[nn.BatchNorm1d | nn.BatchNorm2d]) -> list[nn.Module]:
            """The weighted op with its method's weight handling, then what replaces batch
            norm's place: [op, (DoReFa gradient quantizer), batch norm (unless the spec has
            batch_norm: false) or shift scaling]."""
            kind = s.get("quant") if quantized else None
            bits = int(s.get("bits", DEFAULT_BITS.get(str(kind), 4)))
            if kind == "dorefa":
                step = lowprec.dorefa_step(bits, bool(s.get("po2", True)))
                parametrize.register_parametrization(layer, "weight", lowprec.DoReFaWeight(bits, step))
            elif kind == "wage":
                lowprec.wage_init_(layer.weight, fan_in, bits, self.wage_grad_bits)
            elif kind == "fixed":
                self.fixed_point.append((layer, bits, int(s["frac_bits"]),
                                         s.get("rounding", "stochastic")))
                with torch.no_grad():
                    layer.weight.copy_(lowprec.round_fixed(layer.weight, bits, int(s["frac_bits"]),
                                                           "nearest"))
            out = [layer]
            if grad and grad["quant"] == "dorefa":
                out.append(lowprec.BackwardQuant("dorefa", grad["bits"]))
            if wage:
                out.append(lowprec.ShiftScale(lowprec.wage_alpha(fan_in, bits)))
            elif spec.get("batch_norm", True):
                out.append(norm(width))
            return out

        def linear(n_in: int, n_out: int, s: dict[str, Any], where: str) -> list[nn.Module]:
            wq = weight_quant(s, where) if quantized else None
            return weighted(QuantLinear(n_in, n_out, bias=False, weight_quant=wq), s, n_in, n_out,
                            nn.BatchNorm1d)

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            wq = weight_quant(w_spec, "model.weight") if quantized else None
            layer = QuantConv2d(c_in, c_out, shape["kernel"], padding=shape["padding"],
                                bias=False, weight_quant=wq)
            return weighted(layer, w_spec, c_in * shape["kernel"] ** 2, c_out, nn.BatchNorm2d)

        layers: list[nn.Module] = [*act(in_spec, "model.input")] if quantized else [nn.Identity()]
        channels, height, width_px = input_shape if len(input_shape) == 3 else (1, 0, 0)
        for c in shape["convs"]:
            if c == "pool":
                layers.append(nn.MaxPool2d(2))
                height, width_px = height // 2, width_px // 2
                continue
            layers += [*conv(channels, c), *act(a_spec, "model.act"), *after_act()]
            channels = c
            height = height + 2 * shape["padding"] - shape["kernel"] + 1
            width_px = width_px + 2 * shape["padding"] - shape["kernel"] + 1
        if shape["convs"]:
            if min(height, width_px) < 1:
                raise ValueError(f"model.convs: the convolutions shrink the {input_shape} "
                                 "input to nothing (add padding or remove layers)")
            layers.append(nn.Flatten())
            features = channels * height * width_px
        else:
            features = int(torch.tensor(input_shape).prod())
        self.spatial = bool(shape["convs"])
        for width in shape["hidden"]:
            layers += [*linear(features, width, w_spec, "model.weight"),
                       *act(a_spec, "model.act"), *after_act()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            features = width
        layers += linear(features, classes, last_spec, "model.last_weight")
        self.features = nn.Sequential(*layers)
        self.binary_weights = quantized and str(w_spec.get("quant", "")).startswith("binary")
        if self.binary_weights:
            for m in self.modules():
                if isinstance(m, QuantLinear | QuantConv2d):
                    nn.init.uniform_(m.weight, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spatial:
            x = x.reshape(x.shape[0], -1)
        if self.center:
            x = 2.0 * x - 1.0
        return self.features(x)

    def after_step(self) -> None:
        """What the stored weights undergo after each optimizer step: latent binary weights
        are kept in [-1, 1] (BinaryConnect), where the STE passes gradient; fixed-point
        weights are rounded back to their grid (Gupta et al.)."""
        with torch.no_grad():
            if self.binary_weights:
                for m in self.modules():
                    if isinstance(m, QuantLinear | QuantConv2d):
                        m.weight.clamp_(-1.0, 1.0)
            for layer, word, frac, rounding in self.fixed_point:
                layer.weight.copy_(lowprec.round_fixed(layer.weight, word, frac, rounding,
                                                       self.update_rng))


def build(spec: dict[str, Any], input_shape: tuple[int, ...], classes: int,
          quantized: bool = True, calibrate: bool = False) -> QuantNet:
    arch = spec.get("arch", "mlp")
    if arch not in ("mlp", "cnn"):
        raise ValueError(f"model.arch: {arch!r} is not 'mlp' or 'cnn'")
    if arch == "cnn" and len(input_shape) != 3:
        raise ValueError(f"model.arch: a cnn needs (C, H, W) images, the data gives {input_shape}")
    if arch == "mlp" and topology(spec)["convs"]:
        raise ValueError("model.convs: an mlp has no convolutions; set arch: cnn")
    return QuantNet(spec, input_shape, classes, quantized, calibrate)
