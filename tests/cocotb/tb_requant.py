"""cocotb bench of rtl/requant.sv against the reference requantization (flow.golden.requant:
TFLite's MultiplyByQuantizedMultiplier, double rounding, plus zero point and clamp). Per PE
a random accumulator, bias, multiplier and shift within the block's parameters, and the
extremes: accumulators and sums at both ends of their widths, multipliers 0, 2^30 and
2^31 - 1, the largest left and right shifts and none, outputs beyond the clamp bounds;
each code checked requant_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
import numpy as np
from tb_common import first_difference, job, pack, pipeline_outputs, unpack, value_range

from flow.backends.rtl import requant_latency
from flow.golden.requant import multiply_by_quantized_multiplier

MULTIPLIERS = (0, 2**30, 2**31 - 1)


@cocotb.test()
async def requantized_codes(dut: Any) -> None:
    j = job()
    pe, acc_bits, bias_bits, sum_bits = j["PE"], j["ACC_BITS"], j["BIAS_BITS"], j["SUM_BITS"]
    lsh_max, rsh_max, out_bits = j["LSH_MAX"], j["RSH_MAX"], j["OUT_BITS"]
    zero_point, clamp_min, clamp_max = j["ZERO_POINT"], j["CLAMP_MIN"], j["CLAMP_MAX"]
    lsh_bits, rsh_bits = max(1, lsh_max.bit_length()), max(1, rsh_max.bit_length())
    acc_lo, acc_hi = value_range(acc_bits, True)
    bias_lo, bias_hi = value_range(bias_bits, True)
    sum_lo, sum_hi = value_range(sum_bits, True)
    rng = random.Random(j["seed"])

    def channel(extreme: bool) -> tuple[int, int, int, int]:
        """(acc, bias, multiplier, shift) with acc + bias in SUM_BITS."""
        while True:
            if extreme:
                acc = rng.choice([v for v in (acc_lo, acc_hi, 0, -1, 1) if v <= acc_hi])
                bias = rng.choice((bias_lo, bias_hi, 0, -1))
                m = rng.choice(MULTIPLIERS)
                shift = rng.choice((lsh_max, -rsh_max, 0))
            else:
                acc, bias = rng.randint(acc_lo, acc_hi), rng.randint(bias_lo, bias_hi)
                m = rng.choice((0, *MULTIPLIERS, *[rng.randint(2**30, 2**31 - 1)] * 6))
                shift = rng.randint(-rsh_max, lsh_max)
            if sum_lo <= acc + bias <= sum_hi:
                return acc, bias, m, shift

    cases = [[channel(i % 2 == 0) for _ in range(pe)] for i in range(j["vectors"])]
    # the sum's ends, largest left shift and multiplier: the widest product
    for s in (sum_lo, sum_hi):
        acc = min(max(s, acc_lo), acc_hi)
        if bias_lo <= s - acc <= bias_hi:
            cases.append([(acc, s - acc, 2**31 - 1, lsh_max)] * pe)

    inputs = []
    for chans in cases:
        acc, bias, m, shift = (list(v) for v in zip(*chans, strict=True))
        inputs.append({"acc": pack(acc, acc_bits), "bias": pack(bias, bias_bits),
                       "multiplier": pack(m, 31),
                       "lsh": pack([max(s, 0) for s in shift], lsh_bits),
                       "rsh": pack([max(-s, 0) for s in shift], rsh_bits)})
    got = await pipeline_outputs(dut, inputs, "out_data", requant_latency())
    a = np.array(cases, dtype=np.int64)  # [vectors, PE, (acc, bias, m, shift)]
    y = multiply_by_quantized_multiplier(a[..., 0] + a[..., 1], a[..., 2], a[..., 3])
    want = np.clip(y + zero_point, clamp_min, clamp_max)
    signed = clamp_min < 0
    codes = [unpack(g, pe, out_bits, signed) for g in got]
    diff = first_difference(codes, want.tolist())
    first = next((c for c, g, w in zip(cases, codes, want.tolist(), strict=True) if g != w), None)
    assert not diff, f"codes: {diff}; (acc, bias, multiplier, shift) per PE: {first}"
    # the clamp was exercised at each bound inside int32
    for bound in {clamp_min, clamp_max} - {-(2**31), 2**31 - 1}:
        assert np.any(want == bound), f"no output clamped to {bound}"
