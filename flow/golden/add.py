"""Golden semantics of the residual join: acc = WA * a + WB * b on two code streams of one
frame, then the activation of each element's channel (flow/ir/add.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.exact import check_bounds
from flow.golden.requant import prepare_activation
from flow.ir import AddLayer, add_accumulators

KINDS = (AddLayer,)  # the IR kinds it handles (flow.ir.kind_registry)


def prepare(layer: AddLayer) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The layer as a function of both inputs' codes [N, H*W*C] -> codes [N, H*W*C]."""
    activate = prepare_activation(layer.activation, np.int64)
    channels = layer.out_channels

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        acc = add_accumulators(layer, a, b)
        check_bounds(layer, acc)
        n = len(acc)
        return activate(acc.reshape(n, -1, channels)).reshape(n, -1)

    return run
