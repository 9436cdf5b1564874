"""The cocotb side of the board simulation (imported inside the simulator only): a host at
the other end of the board top's UART, at the bit level.

The job (JSON named by $QFLOW_SIM_JOB): {"clk_ps", "bit_ps", "frames": [[byte, ...], ...],
"reply_len", "faults": {frame: {"stop_error": byte} | {"cut": bytes}}, "reply_timeout_ps"}.
Frames go one at a time, each byte as start bit, 8 data bits LSB first and stop bit, bit_ps
apart (the host's baud rate, not the board's divided clock); the bench samples each reply
bit at its middle, as a UART does, and writes the replies to the job's .out.json.
A fault sends a byte's stop bit as 0, or only the first `cut` bytes of the frame.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer, with_timeout

from flow.backends.rtl.harness import JOB_ENV

POWER_ON_CLOCKS = 64  # the shell's power-on reset lasts fewer


async def send_byte(dut: Any, value: int, bit_ps: int, stop: int = 1) -> None:
    for level in [0, *((value >> i) & 1 for i in range(8)), stop]:
        dut.uart_rx.value = level
        await Timer(bit_ps, unit="ps")
    if not stop:  # a break: the line back to idle for a bit before the next start bit
        dut.uart_rx.value = 1
        await Timer(bit_ps, unit="ps")


async def receive(dut: Any, n: int, bit_ps: int) -> list[int]:
    got: list[int] = []
    while len(got) < n:
        await FallingEdge(dut.uart_tx)
        await Timer(bit_ps // 2, unit="ps")
        if dut.uart_tx.value != 0:
            raise AssertionError(f"reply byte {len(got)}: start bit not low at its middle")
        value = 0
        for i in range(8):
            await Timer(bit_ps, unit="ps")
            value |= int(dut.uart_tx.value) << i
        await Timer(bit_ps, unit="ps")
        if dut.uart_tx.value != 1:
            raise AssertionError(f"reply byte {len(got)}: stop bit low (framing error)")
        got.append(value)
    return got


@cocotb.test()
async def run_job(dut: Any) -> None:
    path = Path(os.environ[JOB_ENV])
    job = json.loads(path.read_text())
    bit_ps = job["bit_ps"]
    Clock(dut.clk, job["clk_ps"], unit="ps").start()
    dut.uart_rx.value = 1
    await Timer(POWER_ON_CLOCKS * job["clk_ps"], unit="ps")
    replies = []
    for k, frame in enumerate(job["frames"]):
        fault = job["faults"].get(str(k), {})
        answer = cocotb.start_soon(receive(dut, job["reply_len"], bit_ps))
        for i, b in enumerate(frame[:fault.get("cut", len(frame))]):
            await send_byte(dut, b, bit_ps, stop=int(fault.get("stop_error") != i))
        replies.append(await with_timeout(answer, job["reply_timeout_ps"], "ps"))
    path.with_suffix(".out.json").write_text(json.dumps({"replies": replies}))
