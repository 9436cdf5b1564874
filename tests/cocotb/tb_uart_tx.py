"""cocotb bench of rtl/uart/uart_tx.sv against a Python model: random bytes offered with random
valid gaps; the tx line, sampled every clock, must be exactly the model's waveform (idle
high, then for each byte a start bit, 8 data bits LSB first and a stop bit, each
CLKS_PER_BIT clocks long), and s_axis_tready high exactly while the line is idle."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from tb_common import job


def waveform(value: int, clks: int) -> list[int]:
    return [b for level in [0, *((value >> i) & 1 for i in range(8)), 1] for b in [level] * clks]


@cocotb.test()
async def tx_random_bytes(dut: Any) -> None:
    j = job()
    clks, rng = j["CLKS_PER_BIT"], random.Random(j["seed"])
    values = [0x00, 0xFF, 0xA5] + [rng.getrandbits(8) for _ in range(j["n"] - 3)]
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst_n.value = 1
    line: list[int] = []  # tx in each cycle
    starts: list[int] = []  # cycle each byte was taken
    i, cycle, valid = 0, 0, False
    while i < len(values) or len(line) < (starts[-1] if starts else 0) + 10 * clks + 2:
        await FallingEdge(dut.clk)
        if not valid and i < len(values) and rng.random() < 0.3:
            valid = True
            dut.s_axis_tdata.value = values[i]
        dut.s_axis_tvalid.value = int(valid)
        line.append(int(dut.tx.value))
        busy = bool(starts) and cycle < starts[-1] + 1 + 10 * clks
        assert int(dut.s_axis_tready.value) == int(not busy), f"cycle {cycle}: tready"
        if valid and dut.s_axis_tready.value:
            starts.append(cycle)
            i, valid = i + 1, False
        cycle += 1
    want = [1] * len(line)
    for s, v in zip(starts, values, strict=True):
        want[s + 1:s + 1 + 10 * clks] = waveform(v, clks)
    assert line == want[:len(line)], "the tx waveform differs from the model's"
