"""Thresholds as the hardware compares them, shared by the HLS and RTL generators.

An XNOR layer (BIPOLAR x BIPOLAR) accumulates the popcount of agreeing bits, not the sum,
so its thresholds move to the popcount's domain (`flow.ir.popcount_thresholds`). Either
way a threshold beyond what the accumulator can reach is clipped to one past its end: a
threshold at or below the lowest value always counts, one above the highest never does,
and the stored thresholds need at most one bit more than the accumulator.
"""

from __future__ import annotations

import numpy as np

from flow.ir import AddLayer, DenseLayer, IRError, popcount_thresholds, thresholds_of


def accumulator_range(layer: DenseLayer | AddLayer) -> tuple[int, int]:
    """The values the hardware's accumulator takes: popcount [0, in_features] for an XNOR
    layer, else the sum's bounds [acc_min, acc_max] (an add's too)."""
    if isinstance(layer, DenseLayer) and layer.is_xnor:
        return 0, layer.in_features
    return layer.acc_min, layer.acc_max


def hardware_thresholds(layer: DenseLayer | AddLayer) -> np.ndarray:
    """The layer's thresholds [out_features, count] (int64) on the accumulator's domain
    (popcount for XNOR layers), clipped to [lowest, highest + 1] of `accumulator_range`."""
    act = thresholds_of(layer, "the hardware backends")
    if act is None:
        raise IRError(f"layer {layer.name}: no thresholds (the last layer outputs its sums)")
    lo, hi = accumulator_range(layer)
    t = popcount_thresholds(layer) if isinstance(layer, DenseLayer) and layer.is_xnor \
        else act.values
    return np.clip(t, lo, hi + 1).astype(np.int64)
