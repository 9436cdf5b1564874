"""Everything pool-specific in the firmware (firmware/qnn_pool.c). Max pooling:
qnn_maxpool on the frame as its producer stores it, int8 codes or bits (BIPOLAR read as
bits by the next layer: the max is the OR of the bits), its output stored the same way.
Average pooling: qnn_avgpool on int8 codes (BIPOLAR ones as -1 / +1), each window's sum
shifted,
rounded and clamped as the IR says, stored as int8 (UINT8 minus 128)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flow.backends.firmware.common import FirmwareError, storage_offset
from flow.backends.firmware.conv import frame_bytes
from flow.ir import AvgPoolLayer, MaxPoolLayer, Pool

KINDS = (MaxPoolLayer, AvgPoolLayer)  # the IR kinds it handles (flow.ir.kind_registry)

NOTES: list[str] = []


def reads_bits(layer: Pool, bits_out: bool = False) -> bool:
    """A pool reads its frame as its consumer reads the result (bits only for BIPOLAR)."""
    return bits_out and layer.input_dtype.is_bipolar


@dataclass
class PoolPlan:
    index: int
    layer: Pool
    bits: bool  # bit frames in and out
    why: str = ""

    @property
    def average(self) -> bool:
        return isinstance(self.layer, AvgPoolLayer)

    @property
    def kernel_name(self) -> str:
        return "qnn_avgpool" if self.average else "qnn_maxpool"

    @property
    def mac_kind(self) -> str:
        return self.layer.kind

    @property
    def outputs(self) -> int:
        return self.layer.out_features

    @property
    def output_bytes(self) -> int:
        oh, ow, c = self.layer.out_shape
        return frame_bytes(oh * ow, c, self.bits)

    @property
    def scratch_bytes(self) -> int:
        return 0

    @property
    def macs(self) -> int:
        """Taps compared or added (reported as MACs: the per-op counts divide by it)."""
        oh, ow, c = self.layer.out_shape
        return oh * ow * c * self.layer.taps

    weight_bytes = threshold_bytes = bias_bytes = 0

    def compact(self) -> PoolPlan | None:
        return None

    def constants_c(self, name: str) -> str:
        layer = self.layer
        (h, w, c), (oh, ow, _) = layer.in_shape, layer.out_shape
        (kh, kw), (sh, sw), (top, left, _, _) = layer.kernel, layer.stride, layer.pads
        window = f"{{{h}, {w}, {c}, {oh}, {ow}, {kh}, {kw}, {sh}, {sw}, {top}, {left}}}"
        what = (f"{kh}x{kw} stride {sh}x{sw} pads {list(layer.pads)}, "
                f"{h}x{w}x{c} -> {oh}x{ow}x{c}")
        if isinstance(layer, AvgPoolLayer):
            lo, hi = layer.clamp
            return (f"/* {layer.name} (from {layer.source}): average pool {what}, "
                    f"{layer.input_dtype} -> {layer.out_dtype}: sum / 2^{layer.shift} "
                    f"({layer.rounding}) */\n"
                    f"const qnn_avgpool_t {name} = {{\n    {window}, {layer.shift}, "
                    f"{int(layer.rounding == 'ROUND')}, {lo}, {hi}, "
                    f"{storage_offset(layer.input_dtype)}, {storage_offset(layer.out_dtype)}"
                    "\n};\n")
        return (f"/* {layer.name} (from {layer.source}): max pool {what} "
                f"{layer.input_dtype} {'bits' if self.bits else 'int8'} */\n"
                f"const qnn_pool_t {name} = {{\n    {window}, {int(self.bits)}\n}};\n")

    def declaration_c(self, name: str) -> str:
        ctype = "qnn_avgpool_t" if self.average else "qnn_pool_t"
        return f"extern const {ctype} {name};"

    def call_c(self, name: str, xs: Sequence[str], y: str, scratch: str) -> str:
        (x,) = xs
        if self.average:
            return f"qnn_avgpool(&{name}, (const int8_t *){x}, (int8_t *){y});"
        return f"qnn_maxpool(&{name}, {x}, {y});"

    def size_row(self) -> dict[str, Any]:
        layer = self.layer
        return {"name": layer.name, "kernel": self.kernel_name, "in": layer.in_features,
                "out": layer.out_features, "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape), "input": str(layer.input_dtype),
                "output": str(layer.out_dtype), "macs": self.macs, "weights_bytes": 0,
                "threshold_bytes": 0}


def plan_layer(i: int, layer: Pool, bits_out: bool = False, in_pixel: int = 0) -> PoolPlan:
    at = f"layer {i} ({layer.name}, from {layer.source})"
    if max(*layer.in_shape, *layer.out_shape) > 0xFFFF or max(*layer.kernel,
                                                              *layer.stride) > 255:
        raise FirmwareError(f"{at}: frame {layer.in_shape} -> {layer.out_shape}, kernel "
                            f"{layer.kernel}, stride {layer.stride} exceed the C types")
    if isinstance(layer, AvgPoolLayer):
        if layer.input_dtype.bits > 8 or layer.out_dtype.bits > 8:
            raise FirmwareError(f"{at}: average pool of {layer.input_dtype} to "
                                f"{layer.out_dtype}: the firmware stores codes of 8 bits "
                                "at most")
        # the sum, times 2^-shift for a negative shift, must fit int32
        if max(-layer.acc_min, layer.acc_max) << max(0, -layer.shift) >= 2**31:
            raise FirmwareError(f"{at}: the window sum times 2^{-layer.shift} exceeds int32")
    return PoolPlan(i, layer, reads_bits(layer, bits_out))
