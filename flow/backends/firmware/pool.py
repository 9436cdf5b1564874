"""Everything maxpool-specific in the firmware: qnn_maxpool (firmware/qnn_pool.c) on the
frame as its producer stores it, int8 codes or bits (BIPOLAR read as bits by the next
layer: the max is the OR of the bits), its output stored the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flow.backends.firmware.conv import frame_bytes
from flow.ir import MaxPoolLayer

NOTES: list[str] = []


def reads_bits(layer: MaxPoolLayer, bits_out: bool = False) -> bool:
    """A pool reads its frame as its consumer reads the result (bits only for BIPOLAR)."""
    return bits_out and layer.input_dtype.is_bipolar


@dataclass
class PoolPlan:
    index: int
    layer: MaxPoolLayer
    bits: bool  # bit frames in and out
    why: str = ""

    @property
    def kernel_name(self) -> str:
        return "qnn_maxpool"

    @property
    def mac_kind(self) -> str:
        return "maxpool"

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
        """Taps compared (reported as MACs: the per-op counts divide by it)."""
        oh, ow, c = self.layer.out_shape
        return oh * ow * c * self.layer.kernel[0] * self.layer.kernel[1]

    weight_bytes = threshold_bytes = bias_bytes = 0

    def compact(self) -> PoolPlan | None:
        return None

    def constants_c(self, name: str) -> str:
        layer = self.layer
        (h, w, c), (oh, ow, _) = layer.in_shape, layer.out_shape
        (kh, kw), (sh, sw), (top, left, _, _) = layer.kernel, layer.stride, layer.pads
        return (f"/* {layer.name} (from {layer.source}): max pool {kh}x{kw} stride {sh}x{sw} "
                f"pads {list(layer.pads)}, {h}x{w}x{c} -> {oh}x{ow}x{c} "
                f"{layer.input_dtype} {'bits' if self.bits else 'int8'} */\n"
                f"const qnn_pool_t {name} = {{\n"
                f"    {{{h}, {w}, {c}, {oh}, {ow}, {kh}, {kw}, {sh}, {sw}, {top}, {left}}}, "
                f"{int(self.bits)}\n}};\n")

    def declaration_c(self, name: str) -> str:
        return f"extern const qnn_pool_t {name};"

    def call_c(self, name: str, x: str, y: str, scratch: str) -> str:
        return f"qnn_maxpool(&{name}, {x}, {y});"

    def size_row(self) -> dict[str, Any]:
        layer = self.layer
        return {"name": layer.name, "kernel": self.kernel_name, "in": layer.in_features,
                "out": layer.out_features, "in_shape": list(layer.in_shape),
                "out_shape": list(layer.out_shape), "input": str(layer.input_dtype),
                "output": str(layer.out_dtype), "macs": self.macs, "weights_bytes": 0,
                "threshold_bytes": 0}


def plan_layer(i: int, layer: MaxPoolLayer, bits_out: bool = False, in_pixel: int = 0
               ) -> PoolPlan:
    return PoolPlan(i, layer, reads_bits(layer, bits_out))
