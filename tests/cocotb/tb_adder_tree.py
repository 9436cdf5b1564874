"""cocotb bench of rtl/adder_tree.sv against Python's sum: a new operand vector every
cycle (random, then all-min and all-max), each sum checked tree_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly
from tb_common import job

from flow.backends.rtl import tree_latency


@cocotb.test()
async def tree_sums(dut: Any) -> None:
    j = job()
    n, bits, signed, k = j["N"], j["IN_BITS"], j["SIGNED"], j["STAGE_LEVELS"]
    rng = random.Random(j["seed"])
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    vectors = [[lo] * n, [hi] * n, [lo, hi] * (n // 2) + [lo] * (n % 2)]
    vectors += [[rng.randint(lo, hi) for _ in range(n)] for _ in range(j["vectors"])]
    out_bits = bits + (n - 1).bit_length()
    latency = tree_latency(n, k)
    Clock(dut.clk, 10, unit="ns").start()
    operands = getattr(dut, "in")  # `in` is a Python keyword
    got: list[int] = []
    await FallingEdge(dut.clk)
    for t in range(len(vectors) + latency):
        if t < len(vectors):
            operands.value = sum((v & ((1 << bits) - 1)) << (i * bits)
                                 for i, v in enumerate(vectors[t]))
        await ReadOnly()  # settled, before the next rising edge
        if t >= latency:  # the sum of the vector driven `latency` cycles ago
            raw = int(dut.sum.value)
            got.append(raw - (1 << out_bits) if signed and raw >> (out_bits - 1) else raw)
        await FallingEdge(dut.clk)
    want = [sum(v) for v in vectors]
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"{len(bad)} sums differ, first vector {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
