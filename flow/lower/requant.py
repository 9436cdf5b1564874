"""A layer's affine float tail (scales, bias, batch norm) and a wide activation quantizer as
a fixed-point requantization (flow/ir/requant.py) instead of 2^b - 1 thresholds.

The tail is measured, not parsed: run by qonnx's executor at both ends of each channel's
accumulator range it gives the channel's slope a and offset b (f(acc) = a * acc + b,
checked at the middle of the range), and the quantizer's code is zp + round(f(acc) / s).
So the requantization's real factor is |a| / s (channels with a < 0 have their weight rows
negated, as for thresholds), and its bias b / s: rounding half to even (the default)
carries it with the product's fractional bits (B = b / s * 2^n) and rounds once, as QONNX's
Quant does, so power-of-two scales give the float graph's own function; TFLite's rounding
takes round(b / a) whole accumulator units and rounds twice.

Whether it differs at all is decided here, not assumed: `requant_matches_thresholds`
compares golden's integer function with the layer's thresholds (the float graph's own
decisions) at every step boundary inside each channel's reachable range, which proves
equality or gives the largest difference. Rounding half to even does better than check:
`solve_bias` computes, from the thresholds, the biases (and nearby multipliers) for which
the requantization's step boundaries are exactly the thresholds. Lowering keeps a
requantization under `auto` where it is proven equal, or, where the float graph's own
product rounds in float32 (the layer is inexact either way), where its boundaries lie
within that product's float32 error of the float graph's.
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
                           hi: np.ndarray, slack: np.ndarray | None = None
                           ) -> tuple[Requant, np.ndarray, np.ndarray]:
    """The requantization closest to the thresholds' step function: (it, its largest
    difference from that function per channel in output steps (`requant_matches_thresholds`:
    0 where proven equal), and per channel the fewest accumulator units its step boundaries
    lie from the thresholds' (-1: farther than `slack`)).

    half_even: each channel's bias solved from the thresholds (`solve_bias`), with the
    multiplier moved by up to MULTIPLIER_SEARCH units where no bias fits exactly; where none
    does, the boundaries may move by up to `slack[c]` units (the float graph's own float32
    error in the product; 0 for an exact one), the fewest that fit. tflite: the bias moved
    by -1, 0 or +1 (it was rounded to whole accumulator units, so the other rounding may
    match)."""
    slack = np.zeros(len(lo), np.int64) if slack is None else slack
    if act.rounding == "half_even" and t.shape[1] == act.clamp_max - act.clamp_min \
            and base == act.clamp_min:
        act, moved = solve_biases(act, t, lo, hi, slack)
        return act, requant_matches_thresholds(act, t, base, lo, hi)[1], moved
    _, diff = requant_matches_thresholds(act, t, base, lo, hi)
    bias = act.bias
    for delta in (-1, 1):
        shifted = dataclasses.replace(act, bias=act.bias + delta)
        _, shifted_diff = requant_matches_thresholds(shifted, t, base, lo, hi)
        better = shifted_diff < diff
        bias, diff = np.where(better, shifted.bias, bias), np.where(better, shifted_diff, diff)
    return dataclasses.replace(act, bias=bias), diff, np.where(diff == 0, 0, -1)


MULTIPLIER_SEARCH = 64  # multipliers tried on each side of the nominal one


def solve_biases(act: Requant, t: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 slack: np.ndarray) -> tuple[Requant, np.ndarray]:
    """The half_even requantization with, per channel, the bias (and where needed the
    multiplier) for which its step boundaries are the thresholds' exactly, or else within
    the fewest accumulator units up to slack[c]; and those units per channel (-1: none fits,
    the nominal parameters kept)."""
    bias, mult = act.bias.copy(), act.multiplier.copy()
    moved = np.full(len(bias), -1, np.int64)
    for c in range(len(bias)):
        m0, n = int(act.multiplier[c]), int(act.shift[c])

        def fit(m: int, units: int, c: int = c, n: int = n) -> int | None:
            return solve_bias(m, n, act.zero_point, act.clamp_min, t[c], int(lo[c]),
                              int(hi[c]), int(act.bias[c]), units)

        nearby = sorted(range(max(m0 - MULTIPLIER_SEARCH, 0),
                              min(m0 + MULTIPLIER_SEARCH, 2**31 - 1) + 1),
                        key=lambda v: abs(v - m0)) if m0 else [0]
        found = next(((m, b) for m in nearby if (b := fit(m, 0)) is not None), None)
        units = 0
        if found is None and fit(m0, int(slack[c])) is not None:
            low, high = 1, int(slack[c])  # the fewest units that fit: a bisection
            while low < high:
                mid = (low + high) // 2
                low, high = (low, mid) if fit(m0, mid) is not None else (mid + 1, high)
            b = fit(m0, low)
            found, units = (None, 0) if b is None else ((m0, b), low)
        if found is not None:
            mult[c], bias[c] = found
            moved[c] = units
    return dataclasses.replace(act, bias=bias, multiplier=mult), moved


def solve_bias(m: int, n: int, zero_point: int, clamp_min: int, t: np.ndarray, lo: int,
               hi: int, nominal: int, units: int = 0) -> int | None:
    """The bias B nearest `nominal` for which clamp(zp + RHE((acc * m + B) / 2^n)) reaches
    level clamp_min + j + 1 from acc = t[j] + units on and not below t[j] - units, for every
    j and every acc in [lo, hi] (units = 0: exactly the thresholds' function), or None.
    RHE(P / 2^n) >= k exactly when P >= (2k - 1) 2^(n-1) + (k odd), so each threshold bounds
    B from both sides (from one where it lies outside the range); the product is
    non-decreasing in acc (m >= 0), so the bounds at the thresholds decide. Python integers
    (object arrays): the bounds reach 2^70."""
    k = np.arange(clamp_min + 1 - zero_point, clamp_min + 1 - zero_point + len(t)).astype(object)
    least = (2 * k - 1) * (1 << (n - 1)) + (k & 1)  # the smallest product reaching level k
    t = t.astype(np.int64)
    reach, below = t + units, t - units
    upper = least[below > lo] - 1 - (np.minimum(below[below > lo], hi + 1) - 1).astype(object) * m
    lower = least[reach <= hi] - np.maximum(reach[reach <= hi], lo).astype(object) * m
    low = max(lower.tolist(), default=-(2**62))
    high = min(upper.tolist(), default=2**62)
    return min(max(nominal, low), high) if low <= high else None
