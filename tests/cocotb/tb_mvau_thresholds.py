"""cocotb bench of rtl/activation/mvau_thresholds.sv against a Python model: per PE, OUT_BASE +
OUT_STEP * (how many of N_THRES thresholds the accumulator reaches), in OUT_BITS. Random
accumulators with thresholds sorted across the accumulator range and one past it, some
equal to the accumulator, and unsorted ones over the whole threshold range; each code
checked thresholds_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import first_difference, job, pack, pipeline_outputs, unpack, value_range

from flow.backends.rtl import thresholds_latency


@cocotb.test()
async def threshold_codes(dut: Any) -> None:
    j = job()
    pe, acc_bits, n_thres = j["PE"], j["ACC_BITS"], j["N_THRES"]
    out_bits, base, step = j["OUT_BITS"], j["OUT_BASE"], j["OUT_STEP"]
    thr_bits = acc_bits + 1
    lo, hi = value_range(acc_bits, True)
    rng = random.Random(j["seed"])

    def thresholds(acc: list[int], kind: int) -> list[int]:
        out = []
        for a in acc:
            if kind == 0:  # sorted, over the range and one past it (never reached)
                t = sorted(rng.randint(lo, hi + 1) for _ in range(n_thres))
            elif kind == 1:  # some equal to the accumulator: reached
                t = sorted(a if rng.random() < 0.5 else rng.randint(lo, hi + 1)
                           for _ in range(n_thres))
            else:  # anything the threshold field holds, unsorted
                t = [rng.randint(*value_range(thr_bits, True)) for _ in range(n_thres)]
            out += t
        return out

    cases = [([v] * pe, thresholds([v] * pe, 1)) for v in (lo, hi)]
    for i in range(j["vectors"]):
        acc = [rng.randint(lo, hi) for _ in range(pe)]
        cases.append((acc, thresholds(acc, i % 3)))
    got = await pipeline_outputs(
        dut, [{"acc": pack(a, acc_bits), "thresholds": pack(t, thr_bits)} for a, t in cases],
        "out_data", thresholds_latency(n_thres))
    mask = (1 << out_bits) - 1
    want = [[(base + step * sum(a >= x for x in t[p * n_thres:(p + 1) * n_thres])) & mask
             for p, a in enumerate(acc)] for acc, t in cases]
    diff = first_difference([unpack(g, pe, out_bits, False) for g in got], want)
    assert not diff, f"codes: {diff}"
