"""The reference implementation of the IR's requantization (flow/ir/requant.py: one
rounding half to even, or TFLite's MultiplyByQuantizedMultiplier with double rounding),
vectorized in int64 over a batch, and the activation step every weighted layer's golden
semantics ends with."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.exact import threshold_levels
from flow.ir import Activation, Requant
from flow.ir.requant import INT32_MAX, INT32_MIN


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SRDHM(a, b) on int32 values held in int64: (a*b + nudge) / 2^31 toward zero."""
    ab = a * b  # |a|, |b| <= 2^31: exact in int64
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """RDBPOT(x, e): x / 2^e rounded to nearest, ties away from zero."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray,
                                     shift: np.ndarray) -> np.ndarray:
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x << left, multiplier), right)


def rounding_shift_half_even(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """RHE(p / 2^n) for n >= 1: p / 2^n rounded to nearest, ties to even, as
    (p + 2^(n-1) - 1 + ((p >> n) & 1)) >> n; |p| < 2^62 keeps the sum in int64."""
    one = np.int64(1)
    return (p + (one << (n - 1)) - 1 + ((p >> n) & 1)) >> n


def requantize(acc: np.ndarray, r: Requant) -> np.ndarray:
    """Accumulators [..., C] -> output codes [..., C] (int64)."""
    acc = np.asarray(acc, dtype=np.int64)
    if r.rounding == "half_even":
        y = rounding_shift_half_even(acc * r.multiplier + r.bias, r.shift)
    else:
        y = multiply_by_quantized_multiplier(acc + r.bias, r.multiplier, r.shift)
    return np.clip(y + r.zero_point, r.clamp_min, r.clamp_max)


def prepare_activation(act: Activation | None, ftype: type) -> Callable[[np.ndarray], np.ndarray]:
    """A layer's activation as a function of its accumulators [..., C] held in `ftype`:
    threshold levels, a requantization, or (the last layer) the accumulators themselves."""
    if act is None:
        return lambda acc: acc.astype(np.int64)
    if isinstance(act, Requant):
        return lambda acc: requantize(acc, act)
    thresholds: np.ndarray = act.values.astype(ftype)
    return lambda acc: threshold_levels(acc, thresholds, act.base, act.step)
