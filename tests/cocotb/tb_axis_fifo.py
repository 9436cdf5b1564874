"""cocotb bench of rtl/stream/axis_fifo.sv against a Python model (a queue: beats out == beats in)."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import STALLS, job

from flow.backends.rtl.stream_bench import start, stream


@cocotb.test()
async def fifo_random_stalls(dut: Any) -> None:
    j = job()
    width, n = j["WIDTH"], j["n"]
    rng = random.Random(j["seed"])
    edges = [0, (1 << width) - 1, 1 << (width - 1)]
    beats = [(edges[k] if k < len(edges) else rng.getrandbits(width), int(rng.random() < 0.25))
             for k in range(n)]
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats, n, pv, pr, seed=j["seed"] + k)
        assert r.beats == beats, f"stalls {pv}/{pr}: beats differ"
        if pv == pr == 1.0 and j["DEPTH"] >= 2:  # one beat per cycle, no bubble
            assert r.out_cycles[-1] - r.out_cycles[0] == n - 1, r.out_cycles
