"""Golden semantics of a dense layer: acc = x @ W.T, then its activation (thresholds or a
requantization; the last layer: the accumulators)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.exact import carrier, check_bounds
from flow.golden.requant import prepare_activation
from flow.ir import DenseLayer

KINDS = (DenseLayer,)  # the IR kinds it handles (flow.ir.kind_registry)


def prepare(layer: DenseLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer as a function of input codes [N, in] (weights converted once)."""
    t = layer.input_dtype
    ftype = carrier(layer.in_features * _max_abs(layer.weights) * max(abs(t.min), abs(t.max)),
                    max(abs(layer.acc_min), abs(layer.acc_max)))
    wt: np.ndarray = np.ascontiguousarray(layer.weights.T.astype(ftype))
    activate = prepare_activation(layer.activation, ftype)

    def run(x: np.ndarray) -> np.ndarray:
        acc = x.astype(ftype, copy=False) @ wt
        check_bounds(layer, acc)
        return activate(acc)

    return run


def _max_abs(a: np.ndarray) -> int:
    return int(np.abs(a).max()) if a.size else 0
