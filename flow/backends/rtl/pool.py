"""Pooling in RTL: one `pool_layer` (rtl/pool/pool_layer.sv: a swu feeding pool_reduce)
per layer. Max (MODE 0): padded taps hold the type's smallest code, so they never win; a
BIPOLAR max is an OR of bits (bit 0 = -1 is the smallest code). Average (MODE 1): padded
taps hold code 0 (BIPOLAR taps widened to 2-bit codes, +1 / -1 / 0 padded); each window's
sum is shifted, rounded and clamped as the IR says.

Streams: PE codes a beat in and out, channel-last; H * W * C / PE beats in a frame,
OH * OW * C / PE out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.backends.rtl import pipeline
from flow.backends.rtl.stage import Stage, Stream, Timing
from flow.backends.rtl.window import Window, feed
from flow.ir import AvgPoolLayer, MaxPoolLayer, Pool
from flow.packing import encode

KINDS = (MaxPoolLayer, AvgPoolLayer)  # the IR kinds it handles (flow.ir.kind_registry)

BLOCKS = ("swu", "pool_reduce", "pool_layer")


def window(layer: Pool) -> Window:
    return Window(layer.in_shape, layer.kernel, layer.stride, layer.pads, layer.folding.pe)


def streams(layer: Pool) -> tuple[Stream, Stream]:
    pe = layer.folding.pe
    return (Stream(pe, layer.input_dtype, layer.in_features // pe),
            Stream(pe, layer.out_dtype, layer.out_features // pe))



def stage(layer: Pool, name: str, image_dir: Path) -> Stage:
    t, pe = layer.input_dtype, layer.folding.pe
    params = {**{("PE" if k == "SIMD" else k): v for k, v in window(layer).params().items()},
              "ELEM_BITS": t.bits, "SIGNED": int(t.signed and not t.is_bipolar),
              "PAD_VALUE": int(encode(np.asarray(t.min), t))}
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    what = f"max pool {kh}x{kw}"
    if isinstance(layer, AvgPoolLayer):
        lo, hi = layer.clamp
        params.update(PAD_VALUE=0, MODE=1, BIPOLAR=int(t.is_bipolar),
                      OUT_BITS=layer.out_dtype.bits,
                      ACC_BITS=layer.acc_dtype.bits + 1, SHIFT=layer.shift,
                      HALF_EVEN=int(layer.rounding == "ROUND"), LO=lo, HI=hi)
        what = f"average pool {kh}x{kw} (sum / 2^{layer.shift}, {layer.rounding}) to " \
               f"{layer.out_dtype}"
    comment = (f"{layer.name}: {what} /{sh}x{sw} pads {list(layer.pads)}, "
               f"{layer.in_shape} -> {layer.out_shape}, {t}, PE {pe}, {layer.cycles} cycles")
    inp, out = streams(layer)
    return Stage("pool_layer", name, params, inp, out, comment, {},
                 {"pe": pe, "simd": 1, "cycles": layer.cycles})


class Reduce:
    """pool_reduce behind the swu: always ready (its output is never stalled); a window's
    result per channel group leaves through its FIFO the cycle after the last tap."""

    def __init__(self, win: Window) -> None:
        self.pixel_beats, self.taps = win.pixel_beats, win.taps
        self.times: list[int] = []

    def ready(self, t: int) -> bool:
        return True

    def take(self, t: int, beat: int) -> None:
        if (beat // self.pixel_beats) % self.taps == self.taps - 1:
            self.times.append(t + pipeline.FIFO_LATENCY)


def output_buffer(layer: Pool) -> int:
    """None counted: pool_reduce's FIFO of two is a window's result in flight."""
    return 0


def timing(layer: Pool, arrivals: list[int]) -> Timing:
    win = window(layer)
    reduce = Reduce(win)
    taken = feed(win, arrivals, reduce, layer.cycles)
    return Timing(taken, reduce.times)
