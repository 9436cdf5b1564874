"""Max pooling in HLS (hls/qflow_pool.hpp): `qflow::streaming_maxpool` when kernel ==
stride (no line buffer, one row of running maxima), else `qflow::maxpool` (the window
generator, padding with the type's minimum, then a per-channel max over each window).
PE channels per stream word; no parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flow.backends.hls.cpp import ApWord, cpp_type, stream_word, window_shape
from flow.backends.hls.dense import layer_label
from flow.ir import MaxPoolLayer


@dataclass
class PoolStage:
    layer: MaxPoolLayer
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
        return self.in_type

    @property
    def out_elems(self) -> int:
        return self.layer.folding.pe

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def streaming(self) -> bool:
        """Non-overlapping windows: the line-buffer-free variant."""
        return self.layer.kernel == self.layer.stride

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
        word = stream_word(pe, self.in_type)
        template = "streaming_maxpool" if self.streaming else "maxpool"
        kh, kw = layer.kernel
        return f"""// {layer.name}: {kh}x{kw} max pool, stride {list(layer.stride)}, pads \
{list(layer.pads)}: {self.cycles} cycles per frame
static void {self.name}(hls::stream<{word}>& in, hls::stream<{word}>& out) {{
  using shape = {window_shape(layer.in_shape, layer.kernel, layer.stride, layer.pads)};
  qflow::{template}<shape, {pe}, {self.in_type}, {layer.input_dtype.min}>(in, out);
}}
"""

    def words(self) -> list[ApWord]:
        pe, t = self.layer.folding.pe, self.layer.input_dtype
        return [ApWord(f"stream word (PE {pe} x {t})", pe * t.bits)]

    def report(self) -> dict[str, Any]:
        f = self.layer.folding
        return {"name": self.layer.name, "pe": f.pe, "simd": f.simd, "cycles": self.cycles,
                "datapath": "or" if self.layer.input_dtype.is_bipolar else "max",
                "streaming": self.streaming}


def stage(layer: MaxPoolLayer, index: int) -> PoolStage:
    return PoolStage(layer, index)
