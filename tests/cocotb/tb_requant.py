"""cocotb bench of rtl/activation/requant.sv against the reference requantization (flow.golden.requant)
in the block's rounding, plus zero point and clamp; each code checked requant_latency
cycles later. Per PE a random accumulator, bias, multiplier and shift within the block's
parameters, and the extremes. tflite (TFLite's MultiplyByQuantizedMultiplier, double
rounding): accumulators and sums at both ends of their widths, multipliers 0, 2^30 and
2^31 - 1, the largest left and right shifts and none. half_even: accumulators at both
ends, multipliers 0, 1 and 2^31 - 1, the smallest shift, 31 and the largest (beyond the
product's width too), products and sums at both ends of PRODUCT_BITS, and ties (the sum exactly
half a step above an odd and an even quotient, either sign). Both: outputs beyond the
clamp bounds."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import cocotb
import numpy as np
from tb_common import first_difference, job, pack, pipeline_outputs, unpack, value_range

from flow.backends.rtl import requant_latency
from flow.golden.requant import multiply_by_quantized_multiplier, rounding_shift_half_even

Channel = tuple[int, int, int, int]  # (acc, bias, multiplier, shift)
INT31_MAX = 2**31 - 1


def tflite_cases(j: dict[str, Any], rng: random.Random) -> list[list[Channel]]:
    """Channels with acc + bias in SUM_BITS; shift -RSH_MAX..LSH_MAX (left positive)."""
    acc_lo, acc_hi = value_range(j["ACC_BITS"], True)
    bias_lo, bias_hi = value_range(j["BIAS_BITS"], True)
    sum_lo, sum_hi = value_range(j["SUM_BITS"], True)
    lsh_max, rsh_max = j["LSH_MAX"], j["RSH_MAX"]
    multipliers = (0, 2**30, INT31_MAX)

    def channel(extreme: bool) -> Channel:
        while True:
            if extreme:
                acc = rng.choice([v for v in (acc_lo, acc_hi, 0, -1, 1) if v <= acc_hi])
                bias = rng.choice((bias_lo, bias_hi, 0, -1))
                m = rng.choice(multipliers)
                shift = rng.choice((lsh_max, -rsh_max, 0))
            else:
                acc, bias = rng.randint(acc_lo, acc_hi), rng.randint(bias_lo, bias_hi)
                m = rng.choice((0, *multipliers, *[rng.randint(2**30, INT31_MAX)] * 6))
                shift = rng.randint(-rsh_max, lsh_max)
            if sum_lo <= acc + bias <= sum_hi:
                return acc, bias, m, shift

    cases = [[channel(i % 2 == 0) for _ in range(j["PE"])] for i in range(j["vectors"])]
    # the sum's ends, largest left shift and multiplier: the widest product
    for s in (sum_lo, sum_hi):
        acc = min(max(s, acc_lo), acc_hi)
        if bias_lo <= s - acc <= bias_hi:
            cases.append([(acc, s - acc, INT31_MAX, lsh_max)] * j["PE"])
    return cases


def half_even_cases(j: dict[str, Any], rng: random.Random) -> list[list[Channel]]:
    """Channels with acc * m and acc * m + bias in PRODUCT_BITS; shift RSH_MIN..RSH_MAX."""
    acc_lo, acc_hi = value_range(j["ACC_BITS"], True)
    bias_lo, bias_hi = value_range(j["BIAS_BITS"], True)
    p_lo, p_hi = value_range(j["PRODUCT_BITS"], True)
    rsh_min, rsh_max, out_bits = j["RSH_MIN"], j["RSH_MAX"], j["OUT_BITS"]

    def fits(acc: int, bias: int, m: int) -> bool:
        return p_lo <= acc * m <= p_hi and p_lo <= acc * m + bias <= p_hi \
            and bias_lo <= bias <= bias_hi

    def shift_for(p: int) -> int:
        """Mostly a shift leaving about OUT_BITS bits of p, so that outputs spread and clamp."""
        if rng.random() < 0.3:
            return rng.randint(rsh_min, rsh_max)
        return min(max(abs(p).bit_length() - rng.randint(0, out_bits + 1), rsh_min), rsh_max)

    def channel(kind: int) -> Channel:
        while True:
            if kind == 0:  # extremes
                acc = rng.choice([v for v in (acc_lo, acc_hi, 0, -1, 1) if v <= acc_hi])
                m = rng.choice((0, 1, INT31_MAX, rng.randint(0, INT31_MAX)))
                bias = rng.choice((bias_lo, bias_hi, 0, -1, 1, p_lo - acc * m, p_hi - acc * m))
                n = rng.choice([rsh_min, rsh_max, *([31] if rsh_min <= 31 <= rsh_max else []),
                                shift_for(acc * m + bias)])
            else:
                acc = rng.randint(acc_lo, acc_hi)
                m = rng.randint(0, min(INT31_MAX, p_hi // max(abs(acc), 1)))
                bias = rng.randint(max(bias_lo, p_lo - acc * m), min(bias_hi, p_hi - acc * m))
                n = shift_for(acc * m + bias)
                if kind == 2:  # a tie: the sum at k + 1/2 steps, k near the product's
                    k = (acc * m >> n) + rng.randint(-1, 1)
                    bias = (k << n) + (1 << (n - 1)) - acc * m
            if fits(acc, bias, m):
                return acc, bias, m, n

    return [[channel(i % 3) for _ in range(j["PE"])] for i in range(j["vectors"])]


def tflite_codes(a: np.ndarray) -> np.ndarray:
    return multiply_by_quantized_multiplier(a[..., 0] + a[..., 1], a[..., 2], a[..., 3])


def half_even_codes(a: np.ndarray) -> np.ndarray:
    return rounding_shift_half_even(a[..., 0] * a[..., 2] + a[..., 1], a[..., 3])


@cocotb.test()
async def requantized_codes(dut: Any) -> None:
    j = job()
    pe, out_bits, half_even = j["PE"], j["OUT_BITS"], bool(j.get("HALF_EVEN", 0))
    lsh_bits = max(1, j.get("LSH_MAX", 0).bit_length())
    rsh_bits = max(1, j["RSH_MAX"].bit_length())
    rng = random.Random(j["seed"])
    cases = (half_even_cases if half_even else tflite_cases)(j, rng)
    codes_of: Callable[[np.ndarray], np.ndarray] = half_even_codes if half_even \
        else tflite_codes

    inputs = []
    for chans in cases:
        acc, bias, m, shift = (list(v) for v in zip(*chans, strict=True))
        left = [0] * pe if half_even else [max(s, 0) for s in shift]
        right = shift if half_even else [max(-s, 0) for s in shift]
        inputs.append({"acc": pack(acc, j["ACC_BITS"]), "bias": pack(bias, j["BIAS_BITS"]),
                       "multiplier": pack(m, 31), "lsh": pack(left, lsh_bits),
                       "rsh": pack(right, rsh_bits)})
    got = await pipeline_outputs(dut, inputs, "out_data", requant_latency())
    # exact integers: the tflite shift's magnitude, half_even's products near 2^62
    a = np.array(cases, dtype=np.int64)  # [vectors, PE, (acc, bias, m, shift)]
    clamp_min, clamp_max = j["CLAMP_MIN"], j["CLAMP_MAX"]
    want = np.clip(codes_of(a) + j["ZERO_POINT"], clamp_min, clamp_max)
    codes = [unpack(g, pe, out_bits, clamp_min < 0) for g in got]
    diff = first_difference(codes, want.tolist())
    first = next((c for c, g, w in zip(cases, codes, want.tolist(), strict=True) if g != w), None)
    assert not diff, f"codes: {diff}; (acc, bias, multiplier, shift) per PE: {first}"
    # the clamp was exercised at each bound inside int32
    for bound in {clamp_min, clamp_max} - {-(2**31), 2**31 - 1}:
        assert np.any(want == bound), f"no output clamped to {bound}"
    if half_even:  # and ties to both parities
        p = a[..., 0] * a[..., 2] + a[..., 1]
        tie = (p & ((np.int64(1) << a[..., 3]) - 1)) == (np.int64(1) << (a[..., 3] - 1))
        parity = (p >> a[..., 3]) & 1
        assert {0, 1} <= set(parity[tie].tolist()), "ties missing a parity"
