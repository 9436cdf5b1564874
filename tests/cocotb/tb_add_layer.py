"""cocotb bench of rtl/compute/add_layer.sv against the words the test's Python model
expects (tests/backends/rtl/test_rtl_add.py: WA*a + WB*b, then golden's activation): both
inputs' beats (PE codes each, tlast on a frame's last) under independent random stalls on
each input and on the output; every beat is taken from both inputs in the same cycle, and
free-running the layer takes one beat a cycle and answers after its fixed latency."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly
from tb_common import Source, job, reset

STUCK = 10_000  # cycles without a handshake: the layer is stuck
# (s0 valid_prob, s1 valid_prob, m ready_prob): free-running first (throughput and
# latency are checked there), then each input stalled alone, the output, all three
STALLS = ((1.0, 1.0, 1.0), (0.4, 1.0, 1.0), (1.0, 0.5, 0.9), (1.0, 1.0, 0.3),
          (0.7, 0.6, 0.5))


def framed(words: list[int], per_frame: int) -> list[tuple[int, int]]:
    return [(w, int(k % per_frame == per_frame - 1)) for k, w in enumerate(words)]


async def join(dut: Any, inputs: list[list[tuple[int, int]]], n_out: int,
               stalls: tuple[float, float, float], rng: random.Random
               ) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Send both inputs' beats and receive n_out; returns the cycles the layer took a beat
    and (cycle, tdata, tlast) of each output beat."""
    *valid_probs, ready_prob = stalls
    sources = [Source(dut, f"s{i}_axis", beats, p, rng)
               for i, (beats, p) in enumerate(zip(inputs, valid_probs, strict=True))]
    taken: list[int] = []
    got: list[tuple[int, int, int]] = []
    cycle = idle = 0
    while len(got) < n_out:
        await FallingEdge(dut.clk)
        for s in sources:
            s.drive()
        ready = rng.random() < ready_prob
        dut.m_axis_tready.value = int(ready)
        await ReadOnly()
        took = [s.taken() for s in sources]
        assert took[0] == took[1], f"cycle {cycle}: one input's beat taken without the other's"
        if took[0]:
            taken.append(cycle)
        received = ready and bool(dut.m_axis_tvalid.value)
        if received:
            got.append((cycle, dut.m_axis_tdata.value.to_unsigned(),
                        int(dut.m_axis_tlast.value)))
        cycle += 1
        idle = 0 if took[0] or received else idle + 1
        assert idle < STUCK, f"no handshake for {STUCK} cycles: {len(taken)} in, {len(got)} out"
    await FallingEdge(dut.clk)
    for s in sources:
        s.idle()
    dut.m_axis_tready.value = 0
    return taken, got


@cocotb.test()
async def add_layer_random_stalls(dut: Any) -> None:
    j = job()
    per_frame = j["beats_per_frame"]
    inputs = [framed(j["a_words"], per_frame), framed(j["b_words"], per_frame)]
    expected = framed(j["y_words"], per_frame)
    n = len(expected)
    rng = random.Random(j["seed"])
    await reset(dut, ["s0_axis", "s1_axis"], ["m_axis"])
    for k, stalls in enumerate(STALLS):
        taken, got = await join(dut, inputs, n, stalls, rng)
        assert len(taken) == n, f"stalls {stalls}: {len(taken)} beats taken, not {n}"
        bad = [i for i, (g, w) in enumerate(zip([(d, t) for _, d, t in got], expected,
                                                strict=True)) if g != w]
        assert not bad, (f"stalls {stalls}: {len(bad)} of {n} beats differ, first {bad[0]}: "
                         f"{got[bad[0]][1:]} != {expected[bad[0]]}")
        if k == 0:  # II 1 from the first beat, each result a fixed latency after its beat
            assert taken == list(range(taken[0], taken[0] + n)), "not one beat a cycle"
            lags = {c - t for (c, _, _), t in zip(got, taken, strict=True)}
            assert lags == {j["latency"]}, f"latencies {sorted(lags)}, not {j['latency']}"
