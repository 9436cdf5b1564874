"""The cocotb side of the harness (imported inside the simulator only; it needs cocotb).

`start` and `stream` drive a design with one AXI-Stream input and one AXI-Stream output
from Python, a cycle at a time, for the block benches (tests/cocotb/). Ports: clk, rst_n,
s_axis_{tvalid,tready,tdata,tlast}, m_axis_{tvalid,tready,tdata,tlast}. `run_job` is the
cocotb test of harness.run_bench, whose testbench (harness.stream_tb_source) does the same
in the simulator.

The bench samples and drives at the falling clock edge. It relies on what AXI-Stream asks
and the rtl/ blocks guarantee: tvalid, tdata and tready outputs do not depend
combinationally on the other side's inputs, so values read mid-cycle decide the handshake
at the next rising edge.
"""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from flow.backends.rtl.harness import StreamResult

# cycles without any handshake after which the design is declared stuck
STALL_LIMIT = 100_000


async def start(dut: Any, reset_cycles: int = 3) -> None:
    """Start the clock and hold reset for a few cycles, both streams idle."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst_n.value = 0
    dut.s_axis_tvalid.value = 0
    dut.s_axis_tdata.value = 0
    dut.s_axis_tlast.value = 0
    dut.m_axis_tready.value = 0
    for _ in range(reset_cycles):
        await FallingEdge(dut.clk)
    dut.rst_n.value = 1


async def stream(dut: Any, beats: list[tuple[int, int]], n_out: int, valid_prob: float = 1.0,
                 ready_prob: float = 1.0, seed: int = 0) -> StreamResult:
    """Send `beats` (tdata, tlast) and receive n_out beats; tvalid (between beats) and
    tready are each asserted with the given probability per cycle."""
    rng = random.Random(seed)
    r = StreamResult()
    # both sides start idle (after `start` or a previous `stream`)
    i, s_valid, driven, m_ready, idle = 0, False, False, False, 0
    while len(r.beats) < n_out:
        await FallingEdge(dut.clk)
        if not s_valid and i < len(beats) and rng.random() < valid_prob:
            s_valid = True  # once raised, held with its beat until taken (AXI-Stream rule)
            dut.s_axis_tdata.value, dut.s_axis_tlast.value = beats[i]
        if s_valid != driven:
            driven = s_valid
            dut.s_axis_tvalid.value = int(s_valid)
        ready = rng.random() < ready_prob
        if ready != m_ready:
            m_ready = ready
            dut.m_axis_tready.value = int(ready)
        progressed = False
        if s_valid and dut.s_axis_tready.value:
            r.in_cycles.append(r.cycles)
            i, s_valid, progressed = i + 1, False, True
        if m_ready and dut.m_axis_tvalid.value:
            r.beats.append((dut.m_axis_tdata.value.to_unsigned(), int(dut.m_axis_tlast.value)))
            r.out_cycles.append(r.cycles)
            progressed = True
        r.cycles += 1
        idle = 0 if progressed else idle + 1
        if idle > STALL_LIMIT:
            raise RuntimeError(f"no handshake for {STALL_LIMIT} cycles: {i}/{len(beats)} beats "
                               f"in, {len(r.beats)}/{n_out} out")
    await FallingEdge(dut.clk)  # let this cycle's handshakes happen, then leave both idle
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    return r


@cocotb.test()
async def run_job(dut: Any) -> None:
    """The clock of harness.run_bench's testbench (qflow_stream_tb), which drives the design,
    records every beat and raises `done` itself, so no Python runs a cycle."""
    Clock(dut.clk, 10, unit="ns", impl="gpi").start()
    await RisingEdge(dut.done)
