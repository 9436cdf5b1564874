"""A layer's affine float tail (scales, bias, batch norm) and a wide activation quantizer as
a fixed-point requantization (flow/ir/requant.py) instead of 2^b - 1 thresholds.

The tail is measured, not parsed: run by qonnx's executor at both ends of each channel's
accumulator range it gives the channel's slope a and offset b (f(acc) = a * acc + b,
checked at the middle of the range), and the quantizer's code is zp + round(f(acc) / s). So the
requantization's real factor is |a| / s and its bias round(b / a) in accumulator units
(channels with a < 0 have their weight rows negated, as for thresholds). Where b / a is
not an integer or the factor not a power of two, the integer function differs from the
float graph by rounding; verify measures it per layer. Where both are exact (power-of-two
scales, no float bias) the IR's bias and factor are the float graph's own: only the integer
function's rounding (ties, double rounding) can differ, and verify checks exactly that.

Whether it differs at all is decided here, not assumed: `requant_matches_thresholds` compares
golden's integer function with the layer's thresholds (the float graph's own decisions) at
every step boundary inside each channel's reachable range, which proves equality or gives
the largest difference; lowering keeps a requantization under `auto` only where it is equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import onnx

from flow.golden.exact import threshold_levels
from flow.golden.requant import requantize
from flow.ir import Requant, accumulator_bounds, half_even_multiplier, quantize_multiplier
from flow.lower.graph import Graph, QuantParams
from flow.lower.thresholds import run_tail

AFFINE_TOLERANCE = 1e-5  # relative: a float32 tail of affine ops, evaluated at the ends


def requantization(g: Graph, tail: list[onnx.NodeProto], start: str, q: QuantParams,
                   real: Callable[[np.ndarray], np.ndarray], w: np.ndarray,
                   x_range: tuple[int, int], rank: int, rounding: str
                   ) -> tuple[Requant, np.ndarray, bool] | None:
    """(requantization, per-channel sign, exact) for the float tail that runs from `start`
    to the activation quantizer `q`, or None where it is not affine in the accumulator (a
    clip or rounding inside it), in the IR's `rounding` form. `exact`: every factor a power
    of two and every bias exactly representable (tflite: a whole number of accumulator
    units; half_even: of the product's), so that the IR's parameters are the float graph's
    own.
    A Relu or Clip just before the quantizer that its clamp subsumes is left out of the
    measured tail (`clamp_subsumes`): the requantization's clamp does its work."""
    channels = w.shape[0]
    while tail and clamp_subsumes(g, tail[-1], q):
        tail = tail[:-1]
    lo, hi = accumulator_bounds(w, *x_range)
    mid = (lo + hi) // 2
    acc = np.stack([lo, hi, mid]).astype(np.int64)
    values = real(acc).reshape(3, channels, *(1,) * (rank - 1))
    f = (run_tail(g, tail, start, values) if tail else values).reshape(3, channels)
    f = f.astype(np.float64)
    span = np.maximum(hi - lo, 1)
    a = (f[1] - f[0]) / span  # the slope over the whole range: float32 noise stays small
    b = f[0] - a * lo
    if np.any(a == 0) or not np.allclose(f[2], a * mid + b, rtol=AFFINE_TOLERANCE,
                                         atol=AFFINE_TOLERANCE * np.abs(f).max(initial=1.0)):
        return None
    scale = float(np.asarray(q.scale).reshape(-1)[0])
    sign = np.where(a < 0, -1, 1)
    qmin, qmax = q.code_range
    zero_point = int(np.asarray(q.zero_point).reshape(-1)[0])
    if rounding == "half_even":
        # code = zp + RHE((|a| * acc' + b) / s) ~ zp + RHE((acc' * M + B) / 2^n)
        pairs = [half_even_multiplier(abs(float(x)) / scale) for x in a]
        n = np.array([k for _, k in pairs], np.int64)
        exact_bias = [float(v) / scale * 2.0 ** int(k) for v, k in zip(b, n, strict=True)]
        bias = np.array([round(v) for v in exact_bias], np.int64)
        exact = all(m == 2**30 for m, _ in pairs) and all(v == round(v) for v in exact_bias)
        return Requant(bias=bias, multiplier=np.array([m for m, _ in pairs], np.int64),
                       shift=n, zero_point=zero_point, clamp_min=qmin, clamp_max=qmax,
                       out_dtype=q.dtype, rounding="half_even"), sign, exact
    factors = [quantize_multiplier(abs(float(x)) / scale) for x in a]
    # f = |a| * (sign * acc) + b: on the signed rows' accumulator the bias is b / |a|
    acc_bias = b / np.abs(a)
    exact = all(m == 2**30 for m, _ in factors) and bool(np.all(acc_bias == np.round(acc_bias)))
    out = Requant(bias=np.round(acc_bias).astype(np.int64),
                  multiplier=np.array([m for m, _ in factors], np.int64),
                  shift=np.array([s for _, s in factors], np.int64), zero_point=zero_point,
                  clamp_min=qmin, clamp_max=qmax, out_dtype=q.dtype, rounding="tflite")
    return out, sign, exact


def clamp_subsumes(g: Graph, node: onnx.NodeProto, q: QuantParams) -> bool:
    """`node` (right before the quantizer q) is a Relu, or a Clip at 0 and at or above q's
    top, and q maps real 0 to its minimum code: q(relu(x)) == q(x), as q clamps below."""
    qmin, qmax = q.code_range
    if q.bipolar or float(np.asarray(q.zero_point).reshape(-1)[0]) != qmin:
        return False
    if node.op_type == "Relu":
        return True
    if node.op_type != "Clip" or len(node.input) < 2 or not node.input[1]:
        return False
    if not all(g.is_const(i) for i in node.input[1:] if i):
        return False
    low = np.asarray(g.const(node.input[1], node))
    high = np.asarray(g.const(node.input[2], node)) if len(node.input) > 2 and node.input[2] \
        else None
    return bool(np.all(low == 0)) and (high is None or bool(np.all(q.codes(high) >= qmax)))


def requant_matches_thresholds(act: Requant, t: np.ndarray, base: int, lo: np.ndarray,
                               hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, whether the requantization equals the thresholds' step function
    base + #{j : acc >= t[c, j]} on every accumulator in [lo[c], hi[c]], and the largest
    difference in output steps there. Both are non-decreasing in acc: between consecutive
    thresholds the step function is constant and the requantization monotone, so both
    ends of every constant piece (lo, hi, t - 1, t clipped to the range) decide equality,
    and the largest difference is attained at one of them. The requantization is
    golden's own function, the one every backend computes."""
    points = np.clip(np.concatenate([lo[None], hi[None], t.T - 1, t.T]), lo, hi)
    want = threshold_levels(points.astype(np.int64), t.astype(np.int64), base, 1) \
        if t.shape[1] else np.full(points.shape, base, np.int64)  # a single level
    diff = np.abs(requantize(points, act) - want).max(axis=0)
    return diff == 0, diff


def closest_requantization(act: Requant, t: np.ndarray, base: int, lo: np.ndarray,
                           hi: np.ndarray) -> tuple[Requant, np.ndarray]:
    """The requantization closest to the thresholds' step function, and its largest
    difference from it per channel (`requant_matches_thresholds`: 0 where proven equal).
    half_even: each channel's bias solved from the thresholds (`solve_bias`), with the
    multiplier moved by up to MULTIPLIER_SEARCH units where no bias fits. tflite: the bias
    moved by -1, 0 or +1 (it was rounded to whole accumulator units, so the other rounding
    may match)."""
    if act.rounding == "half_even" and t.shape[1] == act.clamp_max - act.clamp_min \
            and base == act.clamp_min:
        act = solve_biases(act, t, lo, hi)
        return act, requant_matches_thresholds(act, t, base, lo, hi)[1]
    _, diff = requant_matches_thresholds(act, t, base, lo, hi)
    bias = act.bias
    for delta in (-1, 1):
        moved = dataclasses.replace(act, bias=act.bias + delta)
        _, moved_diff = requant_matches_thresholds(moved, t, base, lo, hi)
        better = moved_diff < diff
        bias, diff = np.where(better, moved.bias, bias), np.where(better, moved_diff, diff)
    return dataclasses.replace(act, bias=bias), diff


MULTIPLIER_SEARCH = 64  # multipliers tried on each side of the nominal one


def solve_biases(act: Requant, t: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Requant:
    """The half_even requantization with, per channel, the bias (and where needed the
    multiplier) for which it equals the thresholds' step function on [lo, hi], where one
    exists; channels without one keep their nominal parameters."""
    bias, mult = act.bias.copy(), act.multiplier.copy()
    for c in range(len(bias)):
        m0 = int(act.multiplier[c])
        for m in sorted(range(max(m0 - MULTIPLIER_SEARCH, 0),
                              min(m0 + MULTIPLIER_SEARCH, 2**31 - 1) + 1),
                        key=lambda v: abs(v - m0)) if m0 else [0]:
            found = solve_bias(m, int(act.shift[c]), act.zero_point, act.clamp_min,
                               t[c], int(lo[c]), int(hi[c]), int(act.bias[c]))
            if found is not None:
                bias[c], mult[c] = found, m
                break
    return dataclasses.replace(act, bias=bias, multiplier=mult)


def solve_bias(m: int, n: int, zero_point: int, clamp_min: int, t: np.ndarray, lo: int,
               hi: int, nominal: int) -> int | None:
    """The bias B nearest `nominal` for which clamp(zp + RHE((acc * m + B) / 2^n)) reaches
    level clamp_min + j + 1 exactly from acc = t[j] on, for every j and every acc in
    [lo, hi], or None. RHE(P / 2^n) >= k exactly when P >= (2k - 1) 2^(n-1) + (k odd), so
    each threshold bounds B from both sides (from one where it lies outside the range);
    the product is non-decreasing in acc (m >= 0), so the bounds at the thresholds decide."""
    low, high = -(2**62), 2**62
    half = 1 << (n - 1)
    for j, tj in enumerate(t.tolist()):
        k = clamp_min + j + 1 - zero_point
        least = (2 * k - 1) * half + (k & 1)  # the smallest product reaching level k
        if tj > lo:  # acc = min(tj, hi + 1) - 1 stays below the level
            high = min(high, least - 1 - (min(tj, hi + 1) - 1) * m)
        if tj <= hi:  # acc = max(tj, lo) reaches it
            low = max(low, least - max(tj, lo) * m)
        if low > high:
            return None
    return min(max(nominal, low), high)
