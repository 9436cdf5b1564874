"""Pooling in HLS (hls/qflow_pool.hpp), PE channels per stream word, no parameter files.
Max: `qflow::streaming_maxpool` when kernel == stride (no line buffer, one row of running
maxima), else `qflow::maxpool` (the window generator, padding with the type's minimum,
then a per-channel max over each window). Average: `qflow::avgpool` (the window generator,
padding with 0, then a per-channel sum, shift, rounding and clamp)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flow.backends.hls.cpp import ApWord, cpp_type, stream_word, window_shape
from flow.backends.hls.dense import layer_label
from flow.ir import AvgPoolLayer, MaxPoolLayer, Pool

KINDS = (MaxPoolLayer, AvgPoolLayer)  # the IR kinds it handles (flow.ir.kind_registry)


@dataclass
class PoolStage:
    layer: Pool
    index: int

    @property
    def name(self) -> str:
        return f"layer{self.index}"

    @property
    def label(self) -> str:
        return layer_label(self.layer, self.index)

    @property
    def in_type(self) -> str:
        return cpp_type(self.layer.input_dtype)

    @property
    def in_elems(self) -> int:
        return self.layer.folding.pe

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_type(self) -> str:
        return cpp_type(self.layer.out_dtype)

    @property
    def out_elems(self) -> int:
        return self.layer.folding.pe

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def streaming(self) -> bool:
        """Non-overlapping windows of a max pool: the line-buffer-free variant."""
        return self.layer.kind == "maxpool" and self.layer.kernel == self.layer.stride

    @property
    def cycles(self) -> int:
        layer = self.layer
        (h, w, c), (kh, kw), p = layer.in_shape, layer.kernel, layer.pads
        words = c // layer.folding.pe
        padded = (h + p[0] + p[2]) * (w + p[1] + p[3]) * words
        if self.streaming:
            return padded
        oh, ow, _ = layer.out_shape
        return padded + oh * ow * kh * kw * words  # + the windows read out of the buffer

    def files(self) -> dict[str, str]:
        return {}

    def function(self) -> str:
        layer, pe = self.layer, self.layer.folding.pe
        kh, kw = layer.kernel
        shape = window_shape(layer.in_shape, layer.kernel, layer.stride, layer.pads)
        if isinstance(layer, AvgPoolLayer):
            lo, hi = layer.clamp
            what = f"average pool (sum / 2^{layer.shift}, {layer.rounding})"
            call = (f"qflow::avgpool<shape, {pe}, {self.in_type}, {self.out_type}, "
                    f"{layer.acc_dtype.bits + 1}, {layer.shift}, "
                    f"{str(layer.rounding == 'ROUND').lower()}, {lo}, {hi}>(in, out);")
        else:
            what = "max pool"
            template = "streaming_maxpool" if self.streaming else "maxpool"
            call = f"qflow::{template}<shape, {pe}, {self.in_type}, {layer.input_dtype.min}>(in, out);"
        return f"""// {layer.name}: {kh}x{kw} {what}, stride {list(layer.stride)}, pads \
{list(layer.pads)}: {self.cycles} cycles per frame
static void {self.name}(hls::stream<{stream_word(pe, self.in_type)}>& in,
                        hls::stream<{stream_word(pe, self.out_type)}>& out) {{
  using shape = {shape};
  {call}
}}
"""

    def words(self) -> list[ApWord]:
        pe = self.layer.folding.pe
        return [ApWord(f"stream word (PE {pe} x {t})", pe * t.bits)
                for t in sorted({self.layer.input_dtype, self.layer.out_dtype}, key=str)]

    def report(self) -> dict[str, Any]:
        f = self.layer.folding
        return {"name": self.layer.name, "pe": f.pe, "simd": f.simd, "cycles": self.cycles,
                "datapath": "sum" if isinstance(self.layer, AvgPoolLayer) else
                "or" if self.layer.input_dtype.is_bipolar else "max",
                "streaming": self.streaming}


def stage(layer: Pool, index: int) -> PoolStage:
    return PoolStage(layer, index)
