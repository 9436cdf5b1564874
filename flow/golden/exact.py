"""Integer arithmetic carried exactly in float arrays where it provably fits the mantissa
(2^24 for float32, 2^53 for float64), so that BLAS does the integer work; int64 otherwise."""

from __future__ import annotations

import numpy as np

from flow.ir import IRError, Layer


def carrier(partial_sum_bound: int, acc_bound: int) -> type:
    """The array type that holds a layer's integers exactly, given the largest magnitude of
    any partial sum of its dot products and of its accumulator."""
    for ftype, limit in ((np.float32, 2**24), (np.float64, 2**53)):
        if partial_sum_bound < limit and acc_bound + 1 < limit:
            return ftype
    return np.int64


def check_bounds(layer: Layer, acc: np.ndarray) -> None:
    """The accumulator must stay inside the bound derived from the layer's input type."""
    if acc.size and (acc.min() < layer.acc_min or acc.max() > layer.acc_max):
        raise IRError(f"layer {layer.name}: accumulator left its derived bound "
                      f"[{layer.acc_min}, {layer.acc_max}]: an input is outside "
                      f"{layer.input_dtype}")


def levels(count: np.ndarray, ftype: type, base: int, step: int) -> np.ndarray:
    """base + step * count, in place and branch-free (np.where mispredicts on random signs)."""
    out: np.ndarray = count.astype(ftype, copy=count.dtype == bool)
    out *= step
    out += base
    return out


def float_product_slack(weights: np.ndarray, x_min: int, x_max: int) -> np.ndarray:
    """Per output channel (weights [C, ...] as integer codes), how far in accumulator units
    a float32 evaluation of the layer's product may move from the exact accumulator: float32
    rounds each of the fan-in products, their sum and the two dequantizations, (fan_in + 3)
    * 2^-24 of the sum of |terms| (inputs in [x_min, x_max]), plus one for the float32
    rounding of the exact value itself."""
    w = np.abs(weights.astype(np.int64)).reshape(weights.shape[0], -1)
    terms = w.sum(axis=1) * (x_max - x_min)
    return np.ceil((w.shape[1] + 3) * 2.0**-24 * terms).astype(np.int64) + 1


def threshold_levels(acc: np.ndarray, thresholds: np.ndarray, base: int, step: int) -> np.ndarray:
    """Output codes base + step * #{j : acc >= T[c, j]}; thresholds [C, K] on the last axis
    of acc [..., C], in acc's carrier type."""
    count = (acc >= thresholds[:, 0]).astype(acc.dtype)
    for j in range(1, thresholds.shape[1]):
        count += acc >= thresholds[:, j]
    return levels(count, acc.dtype.type, base, step)
