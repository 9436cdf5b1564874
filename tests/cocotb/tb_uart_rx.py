"""cocotb bench of rtl/uart/uart_rx.sv against a Python model: random bytes sent at the bit level
by a host whose bit time is off the receiver's by a few percent, with random idle gaps,
glitches shorter than half a bit, and stop bits sent as 0 (framing errors, each followed
by a break). Every byte must come out once, with frame_error exactly where the stop bit was
0."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer
from tb_common import job

CLK_PS = 10_000


async def collect(dut: Any, got: list[tuple[int, int]]) -> None:
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        if dut.valid.value:
            got.append((dut.data.value.to_unsigned(), int(dut.frame_error.value)))


@cocotb.test()
async def rx_random_bytes(dut: Any) -> None:
    j = job()
    rng = random.Random(j["seed"])
    bit_ps = round(j["CLKS_PER_BIT"] * CLK_PS * (1 + j["skew"]))
    Clock(dut.clk, CLK_PS, unit="ps").start()
    dut.rx.value = 1
    dut.rst_n.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst_n.value = 1
    got: list[tuple[int, int]] = []
    cocotb.start_soon(collect(dut, got))
    sent = []
    for k in range(j["n"]):
        value = [0x00, 0xFF, 0x55][k] if k < 3 else rng.getrandbits(8)
        bad = k > 3 and rng.random() < 0.15
        if rng.random() < 0.2:  # a glitch: low for under half a bit, not a start bit
            dut.rx.value = 0
            await Timer(bit_ps // 4, unit="ps")
            dut.rx.value = 1
            await Timer(bit_ps, unit="ps")
        for level in [0, *((value >> i) & 1 for i in range(8)), 0 if bad else 1]:
            dut.rx.value = level
            await Timer(bit_ps, unit="ps")
        dut.rx.value = 1
        gap = bit_ps if bad else rng.choice([0, 0, bit_ps // 3, 2 * bit_ps])
        if gap:
            await Timer(gap, unit="ps")
        sent.append((value, int(bad)))
    await Timer(2 * bit_ps, unit="ps")
    assert got == sent, f"received {got[:8]}..., sent {sent[:8]}..."
