"""Everything add-specific in the firmware (firmware/qnn_add.c): the join of a residual
network, acc = WA * a + WB * b element by element on two int8-stored code frames, then the
activation of the element's channel, through the dense kernels' own store (qnn_emit: the
thresholds of qnn_threshold.c or the requantization of qnn_requant.c). A code stored minus
its offset (UINT8: 128) makes the stored sum WA * off_a + WB * off_b short of the true
one: folded into the thresholds or the requantization's bias as a dense layer's input
offset is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flow.backends.firmware.activation import (
    StoredActivation,
    activation_arrays_c,
    is_half_even,
    requant_c,
    stored_activation,
    stored_bias,
)
from flow.backends.firmware.common import FirmwareError, buffer_bytes, storage_offset
from flow.ir import AddLayer

KINDS = (AddLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

NOTES: list[str] = []


def reads_bits(layer: AddLayer, bits_out: bool = False) -> bool:
    """An add reads int8 codes (BIPOLAR inputs are refused by the IR)."""
    return False


@dataclass
class AddPlan:
    """The stored activation of one add (see flow.backends.firmware.ops.LayerPlan)."""

    index: int
    layer: AddLayer
    act: StoredActivation
    why: str = ""

    @property
    def kernel_name(self) -> str:
        return "qnn_add"

    @property
    def mac_kind(self) -> str:
        return "add"

    @property
    def outputs(self) -> int:
        return self.layer.out_features

    @property
    def output_bytes(self) -> int:
        return buffer_bytes(self.layer.out_features, False)

    @property
    def scratch_bytes(self) -> int:
        return 0

    @property
    def macs(self) -> int:
        """Elements added (reported as MACs: the per-op counts divide by it)."""
        return self.layer.out_features

    weight_bytes = 0

    @property
    def threshold_bytes(self) -> int:
        if self.act.requant is not None:
            return 5 * self.layer.out_channels
        return 0 if self.act.thresholds is None else int(self.act.thresholds.nbytes)

    @property
    def c_bias(self) -> np.ndarray | None:
        return stored_bias(self.act.requant, self.act.bias,
                           f"layer {self.index} ({self.layer.name})")

    @property
    def bias_bytes(self) -> int:
        b = self.c_bias
        return 0 if b is None else int(b.nbytes)

    def compact(self) -> AddPlan | None:
        return None

    def constants_c(self, name: str) -> str:
        """C definitions of its activation's arrays and of its qnn_add_t `name`: the
        activation in a qnn_dense_t without weights, as the dense kernels store theirs."""
        layer, a, i = self.layer, self.act, self.index
        h, w, c = layer.out_shape
        wa, wb = layer.input_weights
        thr = "0" if a.thresholds is None else f"qflow_t{i}"
        # half_even's bias is the requantization's own (qnn_requant_t), not the sum's
        bias = "0" if a.bias is None or is_half_even(a.requant) else f"qflow_b{i}"
        count = 0 if a.thresholds is None else a.thresholds.shape[1]
        return (f"/* {layer.name} (from {layer.source}): add {wa} * {layer.input_dtype} + "
                f"{wb} * {layer.other_dtype}, {h}x{w}x{c} -> {layer.out_dtype} */\n"
                + activation_arrays_c(i, a.thresholds, self.c_bias, a.requant)
                + f"const qnn_add_t {name} = {{\n    {{0, {thr}, {bias}, 0, 0, {c}, {count}, "
                f"{a.base}, {a.step}, QNN_OUT_{a.out_kind}, 0, 0, 0,\n"
                f"     {requant_c(i, a.requant)}}},\n    {wa}, {wb}, {h * w}\n}};\n")

    def declaration_c(self, name: str) -> str:
        return f"extern const qnn_add_t {name};"

    def call_c(self, name: str, xs: Sequence[str], y: str, scratch: str) -> str:
        a, b = xs
        return f"qnn_add(&{name}, (const int8_t *){a}, (const int8_t *){b}, (int8_t *)({y}));"

    def size_row(self) -> dict[str, Any]:
        layer = self.layer
        return {"name": layer.name, "kernel": self.kernel_name, "in": layer.in_features,
                "out": layer.out_features, "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape), "input": str(layer.input_dtype),
                "other_input": str(layer.other_dtype),
                "input_weights": list(layer.input_weights), "output": str(layer.out_dtype),
                "macs": self.macs, "weights_bytes": 0,
                "threshold_bytes": self.threshold_bytes + self.bias_bytes}


def plan_layer(i: int, layer: AddLayer, bits_out: bool = False, in_pixel: int = 0) -> AddPlan:
    """The add's stored activation; FirmwareError naming the layer for what the firmware
    cannot hold: bits (BIPOLAR) in or out, codes of more than 8 bits, sums beyond int32."""
    at = f"layer {i} ({layer.name}, from {layer.source})"
    for t in (*layer.input_dtypes, layer.out_dtype):
        if t.is_bipolar:
            raise FirmwareError(f"{at}: an add of BIPOLAR codes ({t}) is not supported")
        if t.bits > 8:
            raise FirmwareError(f"{at}: {t} codes: the firmware stores codes of 8 bits at most")
    if bits_out or in_pixel:
        raise FirmwareError(f"{at}: an add reads and writes int8 codes, not bits")
    if max(layer.out_shape) > 0xFFFF:
        raise FirmwareError(f"{at}: frame {layer.out_shape} exceeds the C types")
    wa, wb = layer.input_weights
    # the stored sum falls short of WA * a + WB * b by the inputs' storage offsets
    short = wa * storage_offset(layer.input_dtype) + wb * storage_offset(layer.other_dtype)
    for end in (layer.acc_min, layer.acc_max, layer.acc_min - short, layer.acc_max - short):
        if not -(2**31) <= end < 2**31:
            raise FirmwareError(f"{at}: the sum reaches {end}, outside int32")
    corrections = np.full(layer.out_channels, short, np.int64) if short else None
    return AddPlan(i, layer, stored_activation(layer, corrections, at, False))
