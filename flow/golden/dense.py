"""Golden semantics of a dense layer: acc = x @ W.T, then thresholds (or the accumulators)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.exact import carrier, check_bounds, threshold_levels
from flow.ir import DenseLayer


def prepare(layer: DenseLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer as a function of input codes [N, in] (weights converted once)."""
    t = layer.input_dtype
    ftype = carrier(layer.in_features * _max_abs(layer.weights) * max(abs(t.min), abs(t.max)),
                    max(abs(layer.acc_min), abs(layer.acc_max)))
    wt: np.ndarray = np.ascontiguousarray(layer.weights.T.astype(ftype))
    act = layer.activation
    thresholds: np.ndarray | None = None if act is None else act.values.astype(ftype)

    def run(x: np.ndarray) -> np.ndarray:
        acc = x.astype(ftype, copy=False) @ wt
        check_bounds(layer, acc)
        if act is None or thresholds is None:
            return acc.astype(np.int64)
        return threshold_levels(acc, thresholds, act.base, act.step)

    return run


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a).max()) if a.size else 0
