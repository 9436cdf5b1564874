"""The 2-D convolution in RTL: one `conv_layer` (rtl/compute/conv_layer.sv: a swu feeding an mvau,
or a vvau for a depthwise layer) per layer. The mvau is the dense layer of one window:
weights [C_out, kh * kw * C_in] in window order (kh, kw, c), the layer's thresholds; its
parameters, memory images and pipeline latency are dense.py's, computed on that dense view
of the layer. The vvau (rtl/compute/vvau.sv) reduces each channel's own kh * kw taps, PE channels
a beat, one tap a cycle; its thresholds and latency are those of the same dense view
(window kh * kw, SIMD 1), its weights in (tap, channel group) order.

A BIPOLAR input with padding cannot carry a padded tap as a bit (0 is neither -1 nor +1):
there the swu emits 2-bit signed codes (+1, -1, and 0 for a padded tap) and the mvau runs
its multiply-accumulate lanes on them (thresholds in the sum's domain), so that a padded
tap contributes nothing. A depthwise layer's BIPOLAR input always travels so: its lanes
multiply and add, they have no XNOR-popcount form.

Streams: SIMD input codes a beat (PE for depthwise; H * W * C_in / lanes beats a frame), PE
output codes a beat (OH * OW * C_out / PE beats), both channel-last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.backends.rtl import dense
from flow.backends.rtl.stage import Stage, Stream, Timing
from flow.backends.rtl.window import Window, feed
from flow.datatypes import dtype
from flow.ir import Conv2dLayer, DenseLayer
from flow.packing import encode, mem_image, pack_words

KINDS = (Conv2dLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

BLOCKS = (*dense.BLOCKS, "swu", "vvau", "conv_layer")
TERNARY = dtype("INT2")  # the mvau's view of padded BIPOLAR taps: -1, 0, +1


def ternary(layer: Conv2dLayer) -> bool:
    """BIPOLAR taps travel as 2-bit codes (0 for a padded tap) where there is padding, and
    always into a depthwise layer's lanes."""
    return layer.input_dtype.is_bipolar and (any(layer.pads) or layer.depthwise)


def lanes(layer: Conv2dLayer) -> int:
    """Input channels a beat: the MVAU's SIMD, or for depthwise the VVAU's PE."""
    return layer.folding.pe if layer.depthwise else layer.folding.simd


def window(layer: Conv2dLayer) -> Window:
    return Window(layer.in_shape, layer.kernel, layer.stride, layer.pads, lanes(layer))


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
    pe, n = layer.folding.pe, lanes(layer)
    return (Stream(n, layer.input_dtype, layer.in_features // n),
            Stream(pe, layer.out_dtype, layer.out_features // pe))


def depthwise_weight_image(layer: Conv2dLayer) -> str:
    """Word tap * CF + cf holds W[cf * PE + p, tap] at element p (vvau.sv)."""
    pe, wt = layer.folding.pe, layer.weight_dtype
    cf = layer.out_channels // pe
    w = encode(layer.weights, wt).reshape(cf, pe, layer.window).transpose(2, 0, 1)
    return mem_image(pack_words(w.reshape(-1, pe), wt.bits), pe * wt.bits)


def stage(layer: Conv2dLayer, name: str, image_dir: Path) -> Stage:
    view = dense_view(layer)
    mvau = dense.stage(view, name, image_dir,
                       depthwise_weight_image(layer) if layer.depthwise else None)
    xt = layer.input_dtype
    params = {**window(layer).params(),
              "PAD_VALUE": int(encode(np.asarray(layer.pad_value), xt)) if not ternary(layer)
              else 0,
              "TERNARY_OUT": int(ternary(layer)), "DEPTHWISE": int(layer.depthwise),
              "C_OUT": layer.out_channels,
              "ELEM_BITS": xt.bits, "ELEM_SIGNED": int(xt.signed and not xt.is_bipolar),
              "ELEM_BIPOLAR": int(xt.is_bipolar),
              **{k: v for k, v in mvau.params.items()
                 if k not in ("MW", "MH", "SIMD", "IN_BITS", "IN_SIGNED", "IN_BIPOLAR")}}
    pe, simd = layer.folding.pe, layer.folding.simd
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    comment = (f"{layer.name}: {'depthwise ' if layer.depthwise else ''}conv {kh}x{kw} "
               f"/{sh}x{sw} pads {list(layer.pads)}, "
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


class VvauIssue:
    """The vvau behind the swu: it takes a beat every cycle; a window's last tap of each
    channel group leaves as a result pipe_latency later."""

    def __init__(self, layer: Conv2dLayer) -> None:
        self.groups = layer.out_channels // layer.folding.pe
        self.window_beats = layer.window * self.groups
        self.pipe = dense.pipe_latency(dense_view(layer))
        self.times: list[int] = []

    def ready(self, t: int) -> bool:
        return True

    def take(self, t: int, beat: int) -> None:
        if beat % self.window_beats >= self.window_beats - self.groups:
            self.times.append(t + self.pipe)


def output_buffer(layer: Conv2dLayer) -> int:
    """Output beats the unit holds when its output stalls before its computation stalls
    (dense.output_buffer for the mvau). The vvau's results come in bursts of C/PE, one a
    cycle, on each window's last tap: those in flight when its credits run out are at
    most a burst per window's worth of cycles in its pipeline."""
    view = dense_view(layer)
    if not layer.depthwise:
        return dense.output_buffer(view)
    depth = dense.pipe_latency(view) + 1
    groups = layer.out_channels // layer.folding.pe
    return depth - min(depth, groups * (depth // (layer.window * groups) + 1))


def timing(layer: Conv2dLayer, arrivals: list[int]) -> Timing:
    unit = VvauIssue(layer) if layer.depthwise else MvauIssue(dense_view(layer))
    taken = feed(window(layer), arrivals, unit, layer.cycles)
    return Timing(taken, unit.times)
