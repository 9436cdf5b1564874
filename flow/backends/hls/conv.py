"""Convolutions in HLS: `qflow::sliding_window` (hls/qflow_window.hpp) feeding the MVAU
(group 1, hls/qflow_mvau.hpp) or the VVAU (depthwise, hls/qflow_vvau.hpp), inside one
dataflow process per layer.

To the MVAU a convolution is the dense layer of its windows: weights [C_out, kh * kw *
C_in] in the IR's window order (kh, kw, c), one vector per output position. The parameter
header, the accumulator and the activation are therefore the dense stage's, built from
that matrix (`window_matrix`). SIMD lanes run over a window's input channels, so the
window generator emits words of SIMD channels of one tap.

BIPOLAR taps with padding: the pad value is 0 (a padded tap adds nothing), which one bit
cannot hold, so the window generator widens the taps to TERNARY codes (-1, +1, and 0 where
padded) and the datapath adds or subtracts them instead of counting XNOR agreements.
Without padding a BIPOLAR x BIPOLAR convolution keeps the XNOR-popcount datapath.

Depthwise layers: the window generator emits PE channels per word, the VVAU reduces each
channel's own taps, one tap a cycle (the IR's SIMD over taps is not used: every window
takes kh * kw * C / PE cycles, as hls.json reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flow.backends.hls import dense
from flow.backends.hls.cpp import ApWord, cpp_type, stream_word, window_shape
from flow.datatypes import DataType, dtype
from flow.ir import Conv2dLayer, DenseLayer

KINDS = (Conv2dLayer,)  # the IR kinds it handles (flow.ir.kind_registry)


def window_dtype(layer: Conv2dLayer) -> DataType:
    """The type of the window taps the MVAU / VVAU reads (TERNARY for padded BIPOLAR)."""
    if layer.input_dtype.is_bipolar and any(layer.pads):
        return dtype("TERNARY")
    return layer.input_dtype


def window_matrix(layer: Conv2dLayer) -> DenseLayer:
    """The dense layer applied to every window: what the MVAU (VVAU) computes per position."""
    return DenseLayer(
        name=layer.name, source=layer.source, in_features=layer.window,
        out_features=layer.out_channels, input_dtype=window_dtype(layer),
        weight_dtype=layer.weight_dtype, weights=layer.weights.reshape(layer.out_channels, -1),
        acc_min=layer.acc_min, acc_max=layer.acc_max, activation=layer.activation,
        folding=layer.folding)


@dataclass
class ConvStage:
    layer: Conv2dLayer
    index: int
    unit: dense.DenseStage  # the MVAU (VVAU) over the windows

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def label(self) -> str:
        return dense.layer_label(self.layer, self.index)

    @property
    def lanes(self) -> int:
        """Channels per window word: SIMD (MVAU) or PE (VVAU)."""
        f = self.layer.folding
        return f.pe if self.layer.depthwise else f.simd

    @property
    def in_type(self) -> str:
        return cpp_type(self.layer.input_dtype)

    @property
    def in_elems(self) -> int:
        return self.lanes

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_type(self) -> str:
        return self.unit.out_type

    @property
    def out_elems(self) -> int:
        return self.layer.folding.pe

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def win_type(self) -> str:
        return cpp_type(window_dtype(self.layer))

    @property
    def positions(self) -> int:
        return self.layer.out_shape[0] * self.layer.out_shape[1]

    @property
    def cycles(self) -> int:
        """The MVAU's (VVAU's) cycles per frame."""
        if self.layer.depthwise:
            return self.positions * self.layer.window * (self.layer.out_channels // self.lanes)
        return self.layer.cycles

    @property
    def window_cycles(self) -> int:
        """The window generator's cycles per frame: every padded pixel written into the
        line buffer, every window read out (one word a cycle each)."""
        layer = self.layer
        (h, w, c), (kh, kw), p = layer.in_shape, layer.kernel, layer.pads
        words = c // self.lanes
        return ((h + p[0] + p[2]) * (w + p[1] + p[3]) + self.positions * kh * kw) * words

    @property
    def datapath(self) -> str:
        widened = window_dtype(self.layer) != self.layer.input_dtype
        return self.unit.datapath + (" (BIPOLAR taps as -1/+1, padded 0)" if widened else "")

    def files(self) -> dict[str, str]:
        return self.unit.files()

    def function(self) -> str:
        layer, u, f = self.layer, self.unit, self.layer.folding
        kh, kw = layer.kernel
        wt = cpp_type(layer.weight_dtype)
        reps = self.positions
        if layer.depthwise:
            call = (f"qflow::vvau<{layer.window}, {layer.out_channels}, {f.pe}, {wt}, "
                    f"{self.win_type}, {u.acc_bits}, {u.act_type}, {reps}>")
        else:
            call = (f"qflow::mvau<{layer.window}, {layer.out_channels}, {f.simd}, {f.pe}, {wt}, "
                    f"{self.win_type}, {u.acc_bits}, {u.act_type}, {reps}>")
        return f"""// {layer.name}: {kh}x{kw}{' depthwise' if layer.depthwise else ''} convolution, \
stride {list(layer.stride)}, pads {list(layer.pads)}: {self.cycles} cycles per frame \
({self.datapath}), window generator {self.window_cycles}
static void {self.name}(hls::stream<{stream_word(self.lanes, self.in_type)}>& in,
                   hls::stream<{stream_word(f.pe, self.out_type)}>& out) {{
#include "{u.params_file}"
{u.partitions()}
  QFLOW_HLS(DATAFLOW)
  using shape = {window_shape(layer.in_shape, layer.kernel, layer.stride, layer.pads)};
  hls::stream<{stream_word(self.lanes, self.win_type)}> windows("{self.name}.windows");
  QFLOW_HLS(STREAM variable=windows depth=2)
  qflow::sliding_window<shape, {self.lanes}, {self.in_type}, {self.win_type}, \
{layer.pad_value}>(in, windows);
  {call}(
      windows, out, {self.name}_weights, {self.name}_act);
}}
"""

    def words(self) -> list[ApWord]:
        layer = self.layer
        _, weights, output = self.unit.words()
        return [
            ApWord(f"input stream word ({self.lanes} x {layer.input_dtype})",
                   self.lanes * layer.input_dtype.bits),
            ApWord(f"window word ({self.lanes} x {window_dtype(layer)})",
                   self.lanes * window_dtype(layer).bits),
            weights, output,
        ]

    def report(self) -> dict[str, Any]:
        f = self.layer.folding
        return {"name": self.layer.name, "pe": f.pe, "simd": f.simd, "cycles": self.cycles,
                "window_cycles": self.window_cycles, "datapath": self.datapath,
                "acc_bits": self.unit.acc_bits}


def stage(layer: Conv2dLayer, index: int) -> ConvStage:
    """The convolution's window generator and its MVAU (VVAU); the dense stage's width
    limits apply to the window matrix, and its errors name this layer."""
    return ConvStage(layer, index, dense.stage(window_matrix(layer), index))
