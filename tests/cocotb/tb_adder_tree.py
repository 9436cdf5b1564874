"""cocotb bench of rtl/compute/adder_tree.sv against Python's sum: a new operand vector every
cycle (random, then all-min and all-max), each sum checked tree_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import first_difference, job, pack, pipeline_outputs, unpack, value_range

from flow.backends.rtl import tree_latency


@cocotb.test()
async def tree_sums(dut: Any) -> None:
    j = job()
    n, bits, signed, k = j["N"], j["IN_BITS"], j["SIGNED"], j["STAGE_LEVELS"]
    rng = random.Random(j["seed"])
    lo, hi = value_range(bits, signed)
    vectors = [[lo] * n, [hi] * n, [lo, hi] * (n // 2) + [lo] * (n % 2)]
    vectors += [[rng.randint(lo, hi) for _ in range(n)] for _ in range(j["vectors"])]
    out_bits = bits + (n - 1).bit_length()
    got = await pipeline_outputs(dut, [{"in": pack(v, bits)} for v in vectors], "sum",
                                 tree_latency(n, k))
    got = [unpack(g, 1, out_bits, bool(signed))[0] for g in got]
    diff = first_difference(got, [sum(v) for v in vectors])
    assert not diff, f"sums: {diff}"
