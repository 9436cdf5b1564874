"""cocotb bench of rtl/memory/rom.sv against its image: a random address every cycle (then every
address in order), each word checked rom_latency cycles later. The image (the job's
"words", or none: all zero) is written beside the bench by the test, as MEM_FILE."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import first_difference, job, pipeline_outputs

from flow.backends.rtl import ROM_LATENCY


@cocotb.test()
async def rom_reads(dut: Any) -> None:
    j = job()
    depth = j["DEPTH"]
    words = j["words"] or [0] * depth
    rng = random.Random(j["seed"])
    addrs = [rng.randrange(depth) for _ in range(j["reads"])] + list(range(depth))
    got = await pipeline_outputs(dut, [{"addr": a} for a in addrs], "data", ROM_LATENCY)
    diff = first_difference(got, [words[a] for a in addrs])
    assert not diff, f"words read: {diff}"
