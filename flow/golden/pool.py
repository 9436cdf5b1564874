"""Golden semantics of pooling on codes, over strided windows of the whole batch: max pooling
takes the largest code of each window (padded taps count as the type's minimum, so they
never win); average pooling sums each window (padded taps count 0), then divides by a
power of two with the layer's rounding, and clamps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.conv import windows
from flow.golden.exact import check_bounds
from flow.ir import AvgPoolLayer, MaxPoolLayer

KINDS = (MaxPoolLayer, AvgPoolLayer)  # the IR kinds it handles (flow.ir.kind_registry)


def shift_round(acc: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """acc / 2^shift as integers: rounded half to even (ROUND) or down (FLOOR); a product by
    2^-shift for a negative shift."""
    if shift <= 0:
        return acc << -shift
    down = acc >> shift
    if rounding == "FLOOR":
        return down
    # half to even: a tie rounds up only from an odd quotient
    return (acc + (1 << (shift - 1)) - 1 + (down & 1)) >> shift


def prepare(layer: MaxPoolLayer | AvgPoolLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer as a function of codes [N, H*W*C] -> [N, OH*OW*C]."""
    if isinstance(layer, AvgPoolLayer):
        def average(x: np.ndarray) -> np.ndarray:
            win = windows(np.asarray(x, np.int64), layer.in_shape, layer.kernel, layer.stride,
                          layer.pads, 0)
            acc = win.sum(axis=(3, 4))
            check_bounds(layer, acc)
            y = np.clip(shift_round(acc, layer.shift, layer.rounding), *layer.clamp)
            return y.reshape(len(x), -1)

        return average

    def largest(x: np.ndarray) -> np.ndarray:
        win = windows(x, layer.in_shape, layer.kernel, layer.stride, layer.pads,
                      layer.input_dtype.min)
        return win.max(axis=(3, 4)).reshape(len(x), -1)

    return largest
