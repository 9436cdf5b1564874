"""The 2-D convolution in RTL: one `conv_layer` (rtl/conv_layer.sv: a swu feeding an mvau)
per layer. The mvau is the dense layer of one window: weights [C_out, kh * kw * C_in] in
window order (kh, kw, c), the layer's thresholds; its parameters, memory images and
pipeline latency are dense.py's, computed on that dense view of the layer.

A BIPOLAR input with padding cannot carry a padded tap as a bit (0 is neither -1 nor +1):
there the swu emits 2-bit signed codes (+1, -1, and 0 for a padded tap) and the mvau runs
its multiply-accumulate lanes on them (thresholds in the sum's domain), so that a padded
tap contributes nothing. Depthwise convolutions are not built yet.

Streams: SIMD input codes a beat (H * W * C_in / SIMD beats a frame), PE output codes a
beat (OH * OW * C_out / PE beats), both channel-last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.backends.rtl import dense
from flow.backends.rtl.stage import Stage, Stream, Timing
from flow.backends.rtl.window import Window, feed
from flow.datatypes import dtype
from flow.ir import Conv2dLayer, DenseLayer, IRError
from flow.packing import encode

BLOCKS = (*dense.BLOCKS, "swu", "conv_layer")
TERNARY = dtype("INT2")  # the mvau's view of padded BIPOLAR taps: -1, 0, +1


def supported(layer: Conv2dLayer) -> Conv2dLayer:
    if layer.depthwise:
        raise IRError(f"layer {layer.name} (from {layer.source or '?'}): depthwise convolution "
                      f"(group {layer.group}) is not supported by the rtl backend yet")
    return layer


def ternary(layer: Conv2dLayer) -> bool:
    """Padded taps of a BIPOLAR input travel as 2-bit codes with 0 for a padded tap."""
    return layer.input_dtype.is_bipolar and any(layer.pads)


def window(layer: Conv2dLayer) -> Window:
    return Window(layer.in_shape, layer.kernel, layer.stride, layer.pads, layer.folding.simd)


def dense_view(layer: Conv2dLayer) -> DenseLayer:
    """The mvau's layer: one window in, C_out channels out."""
    co = layer.out_channels
    return DenseLayer(name=layer.name, source=layer.source, in_features=layer.window,
                      out_features=co,
                      input_dtype=TERNARY if ternary(layer) else layer.input_dtype,
                      weight_dtype=layer.weight_dtype, weights=layer.weights.reshape(co, -1),
                      acc_min=layer.acc_min, acc_max=layer.acc_max,
                      activation=layer.activation, folding=layer.folding)


def streams(layer: Conv2dLayer) -> tuple[Stream, Stream]:
    supported(layer)
    pe, simd = layer.folding.pe, layer.folding.simd
    return (Stream(simd, layer.input_dtype, layer.in_features // simd),
            Stream(pe, layer.out_dtype, layer.out_features // pe))



def stage(layer: Conv2dLayer, name: str, image_dir: Path) -> Stage:
    supported(layer)
    view = dense_view(layer)
    mvau = dense.stage(view, name, image_dir)
    xt = layer.input_dtype
    params = {**window(layer).params(),
              "PAD_VALUE": int(encode(np.asarray(layer.pad_value), xt)) if not ternary(layer)
              else 0,
              "TERNARY_OUT": int(ternary(layer)), "C_OUT": layer.out_channels,
              "ELEM_BITS": xt.bits, "ELEM_SIGNED": int(xt.signed and not xt.is_bipolar),
              "ELEM_BIPOLAR": int(xt.is_bipolar),
              **{k: v for k, v in mvau.params.items()
                 if k not in ("MW", "MH", "IN_BITS", "IN_SIGNED", "IN_BIPOLAR")}}
    pe, simd = layer.folding.pe, layer.folding.simd
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    comment = (f"{layer.name}: conv {kh}x{kw} /{sh}x{sw} pads {list(layer.pads)}, "
               f"{layer.in_shape} -> {layer.out_shape}, {layer.input_dtype} x "
               f"{layer.weight_dtype}{' (padded taps as 0)' if ternary(layer) else ''}, "
               f"PE {pe} SIMD {simd}, {layer.cycles} cycles")
    inp, out = streams(layer)
    return Stage("conv_layer", name, params, inp, out, comment, mvau.images,
                 {"pe": pe, "simd": simd, "cycles": layer.cycles})


class MvauIssue:
    """The mvau behind the swu: it takes a window's SF beats as its first pass, then issues
    its other NF - 1 passes from its buffer; a pass's result leaves pipe_latency after its
    last beat (dense.timing, input by input)."""

    def __init__(self, view: DenseLayer) -> None:
        self.sf = view.in_features // view.folding.simd
        self.nf = view.out_features // view.folding.pe
        self.pipe = dense.pipe_latency(view)
        self.ready_at, self.count = 0, 0
        self.times: list[int] = []

    def ready(self, t: int) -> bool:
        return t >= self.ready_at

    def take(self, t: int, beat: int) -> None:
        self.count += 1
        if self.count == self.sf:
            self.count = 0
            self.times += [t + n * self.sf + self.pipe for n in range(self.nf)]
            self.ready_at = t + (self.nf - 1) * self.sf + 1


def output_buffer(layer: Conv2dLayer) -> int:
    return dense.output_buffer(dense_view(layer))


def timing(layer: Conv2dLayer, arrivals: list[int]) -> Timing:
    mvau = MvauIssue(dense_view(layer))
    taken = feed(window(layer), arrivals, mvau, layer.cycles)
    return Timing(taken, mvau.times)

