"""Golden semantics of max pooling on codes: the largest code of each window (padded taps
count as the type's minimum, so they never win)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.conv import windows
from flow.ir import MaxPoolLayer


def prepare(layer: MaxPoolLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer as a function of codes [N, H*W*C] -> [N, OH*OW*C]."""

    def run(x: np.ndarray) -> np.ndarray:
        win = windows(x, layer.in_shape, layer.kernel, layer.stride, layer.pads,
                      layer.input_dtype.min)
        return win.max(axis=(3, 4)).reshape(len(x), -1)

    return run
