"""cocotb bench of rtl/compute/mvau_xnor_dot.sv against a Python model: per PE, the number of lanes
where input bit and weight bit agree. Random bits every cycle (each PE its own input), plus
all agreeing and all differing; each count checked xnor_dot_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import first_difference, job, pipeline_outputs, unpack

from flow.backends.rtl import xnor_dot_latency


@cocotb.test()
async def xnor_counts(dut: Any) -> None:
    j = job()
    pe, simd = j["PE"], j["SIMD"]
    bits = pe * simd
    rng = random.Random(j["seed"])
    ones = (1 << bits) - 1
    pairs = [(0, 0), (ones, ones), (0, ones), (ones, 0)]  # every lane agrees / differs
    pairs += [(rng.getrandbits(bits), rng.getrandbits(bits)) for _ in range(j["vectors"])]
    sum_bits = 1 + (simd - 1).bit_length()
    got = await pipeline_outputs(dut, [{"x": x, "w": w} for x, w in pairs], "sum",
                                 xnor_dot_latency(simd))

    def counts(x: int, w: int) -> list[int]:
        agree = ~(x ^ w) & ones
        return [bin((agree >> (p * simd)) & ((1 << simd) - 1)).count("1") for p in range(pe)]

    diff = first_difference([unpack(g, pe, sum_bits, False) for g in got],
                            [counts(x, w) for x, w in pairs])
    assert not diff, f"popcounts: {diff}"
