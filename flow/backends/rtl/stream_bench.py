"""The cocotb side of the harness: a bench for a design with one AXI-Stream input and one
AXI-Stream output (imported inside the simulator only; it needs cocotb).

Ports: clk, rst_n, s_axis_{tvalid,tready,tdata,tlast}, m_axis_{tvalid,tready,tdata,tlast}
(the stream blocks of rtl/ and every generated model top). `start` and `stream` are for
block benches (tests/cocotb/); `run_job` is the cocotb test that harness.run_bench starts:
it reads a job (JSON) named by $QFLOW_SIM_JOB and writes the StreamResult beside it.

The bench samples and drives at the falling clock edge. It relies on what AXI-Stream asks
and the rtl/ blocks guarantee: tvalid, tdata and tready outputs do not depend
combinationally on the other side's inputs, so values read mid-cycle decide the handshake
at the next rising edge.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from flow.backends.rtl.harness import JOB_ENV, StreamResult, result_json

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


async def count_extra_beats(dut: Any, cycles: int) -> int:
    """Output beats in the next `cycles` cycles, tready held high (none are expected).
    Called at a falling edge, like `stream` returns."""
    extra = 0
    dut.m_axis_tready.value = 1
    for _ in range(cycles):  # at a falling edge: tvalid now is a handshake at the next rise
        extra += int(dut.m_axis_tvalid.value)
        await FallingEdge(dut.clk)
    dut.m_axis_tready.value = 0
    return extra


@cocotb.test()
async def run_job(dut: Any) -> None:
    """The job: {"beats": [[tdata, tlast], ...], "n_out", "valid_prob", "ready_prob", "seed",
    "trailing_cycles"}; the result goes to the job's path with .out.json."""
    path = Path(os.environ[JOB_ENV])
    job = json.loads(path.read_text())
    await start(dut)
    r = await stream(dut, [tuple(b) for b in job["beats"]], job["n_out"], job["valid_prob"],
                     job["ready_prob"], job["seed"])
    r.extra_beats = await count_extra_beats(dut, job["trailing_cycles"])
    path.with_suffix(".out.json").write_text(result_json(r))
