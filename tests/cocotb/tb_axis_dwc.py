"""cocotb bench of rtl/stream/axis_dwc.sv against a Python model: the element sequence regrouped
into OUT_ELEMS per beat, tlast on the beat ending a frame."""

from __future__ import annotations

import math
import random
from typing import Any

import cocotb
from tb_common import STALLS, job

from flow.backends.rtl.stream_bench import start, stream


def regroup(elems: list[int], last: list[bool], n: int, bits: int) -> list[tuple[int, int]]:
    """Model: elements (element 0 in the low bits) and per-element frame ends -> beats."""
    return [(sum(e << (k * bits) for k, e in enumerate(elems[i:i + n])), int(last[i + n - 1]))
            for i in range(0, len(elems), n)]


@cocotb.test()
async def dwc_random_stalls(dut: Any) -> None:
    j = job()
    bits, a, b = j["ELEM_BITS"], j["IN_ELEMS"], j["OUT_ELEMS"]
    rng = random.Random(j["seed"])
    unit = a * b // math.gcd(a, b)  # frames hold a common multiple of both beat sizes
    frames = [unit * rng.randint(1, 3) for _ in range(j["frames"])]
    elems = [rng.getrandbits(bits) for _ in range(sum(frames))]
    elems[:2] = [0, (1 << bits) - 1]
    last = [False] * len(elems)
    end = 0
    for f in frames:
        end += f
        last[end - 1] = True
    beats_in = regroup(elems, last, a, bits)
    expected = regroup(elems, last, b, bits)
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats_in, len(expected), pv, pr, seed=j["seed"] + k)
        assert r.beats == expected, f"stalls {pv}/{pr}: beats differ"
        if pv == pr == 1.0:  # the busier side runs at one beat per cycle
            busy = max(len(beats_in), len(expected))
            assert r.out_cycles[-1] - r.in_cycles[0] <= busy + 2, (r.in_cycles, r.out_cycles)
