"""cocotb bench of rtl/stream/axis_fork.sv against a Python model (each output a queue
receiving the input's beats once, in order): random data and tlast, random input stalls and
independent random stalls on every output, one of them stalled for long stretches; an
output that waits keeps its tvalid and beat (AXI-Stream). Free-running, every output takes
each beat in the cycle the input offers it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly
from tb_common import Source, job, ready_runs, reset

STUCK = 10_000  # cycles without a handshake: the fork is stuck


def patterns(n_out: int, rng: random.Random) -> list[tuple[float, list[Iterator[bool]]]]:
    """(input valid_prob, each output's tready): free-running, random stalls everywhere,
    then the first or the last output stalled for long stretches while the others run."""
    def each(prob: float, longest: int = 1) -> list[Iterator[bool]]:
        return [ready_runs(rng, prob, longest) for _ in range(n_out)]

    return [
        (1.0, each(1.0)),
        (0.7, each(0.5)),
        (1.0, [ready_runs(rng, 0.5, 80), *each(0.9)[1:]]),
        (0.8, [*each(0.6)[1:], ready_runs(rng, 0.3, 120)]),
    ]


async def fork(dut: Any, beats: list[tuple[int, int]], valid_prob: float,
               readys: list[Iterator[bool]], rng: random.Random
               ) -> tuple[list[int], list[list[tuple[int, int, int]]]]:
    """Send `beats` until every output has received as many; returns the cycles the input
    took its beats and, per output, (cycle, tdata, tlast) of each beat received."""
    n_out = len(readys)
    source = Source(dut, "s_axis", beats, valid_prob, rng)
    taken: list[int] = []
    got: list[list[tuple[int, int, int]]] = [[] for _ in range(n_out)]
    held: dict[int, tuple[int, int]] = {}  # outputs offered a beat they did not take
    cycle = idle = 0
    while min(len(g) for g in got) < len(beats):
        await FallingEdge(dut.clk)
        source.drive()
        ready = [next(r) for r in readys]
        dut.m_axis_tready.value = sum(int(r) << i for i, r in enumerate(ready))
        await ReadOnly()
        valid = dut.m_axis_tvalid.value.to_unsigned()
        beat = (dut.m_axis_tdata.value.to_unsigned(), int(dut.m_axis_tlast.value))
        progressed = False
        for i in range(n_out):
            offered = bool(valid >> i & 1)
            assert held.get(i, beat) == beat and (offered or i not in held), \
                f"output {i} withdrew or changed its beat in cycle {cycle}"
            held.pop(i, None)
            if offered and ready[i]:
                got[i].append((cycle, *beat))
                progressed = True
            elif offered:
                held[i] = beat
        if source.taken():
            taken.append(cycle)
            progressed = True
        cycle += 1
        idle = 0 if progressed else idle + 1
        assert idle < STUCK, f"no handshake for {STUCK} cycles: {[len(g) for g in got]}"
    await FallingEdge(dut.clk)
    source.idle()
    dut.m_axis_tready.value = 0
    return taken, got


@cocotb.test()
async def fork_random_stalls(dut: Any) -> None:
    j = job()
    width, n, n_out = j["WIDTH"], j["n"], j["N_OUT"]
    rng = random.Random(j["seed"])
    edges = [0, (1 << width) - 1, 1 << (width - 1)]
    beats = [(edges[k] if k < len(edges) else rng.getrandbits(width), int(rng.random() < 0.2))
             for k in range(n)]
    await reset(dut, ["s_axis"], ["m_axis"])
    for k, (valid_prob, readys) in enumerate(patterns(n_out, rng)):
        taken, got = await fork(dut, beats, valid_prob, readys, rng)
        assert len(taken) == n, f"pattern {k}: the input gave {len(taken)} beats, not {n}"
        for i, g in enumerate(got):
            assert [(d, t) for _, d, t in g] == beats, f"pattern {k}: output {i}'s beats differ"
        if k == 0:  # zero latency: one beat a cycle, out in the cycle it comes in
            assert all(taken == [c for c, _, _ in g] for g in got), "outputs lag the input"
            assert taken == list(range(taken[0], taken[0] + n)), "not one beat a cycle"
