"""Shared by the block benches: the job (JSON in $QFLOW_TB), the stall patterns, fields
packed into a port's value (flow.packing's layout), a driver for blocks that are plain
pipelines (no handshake: a new input every cycle, its result a fixed latency later), a
driver of one stream among several (blocks with more than one input or output), and the
bench of a layer's stage against the golden model."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from flow import golden
from flow.backends.rtl.ops import op
from flow.backends.rtl.stream_bench import start, stream
from flow.ir import load
from flow.packing import encode, pack_words, unpack_words
from flow.synthetic import random_codes

# (valid_prob, ready_prob): free-running first (throughput is checked there), then random
# stalls on the input, the output and both
STALLS = ((1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.6, 0.6))


def job() -> dict[str, Any]:
    return json.loads(os.environ["QFLOW_TB"])


def pack(values: list[int], bits: int) -> int:
    """Integers (two's complement when negative) -> one word, value k at bits [k*bits, ...)."""
    fields = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return pack_words(fields[None, :], bits)[0]


def unpack(word: int, n: int, bits: int, signed: bool) -> list[int]:
    return unpack_words([word], n, bits, signed)[0].tolist()


def value_range(bits: int, signed: bool, bipolar: bool = False) -> tuple[int, int]:
    """Smallest and largest value of an operand (BIPOLAR: -1 / +1 in one bit)."""
    if bipolar:
        return -1, 1
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


async def pipeline_outputs(dut: Any, inputs: list[dict[str, int]], output: str,
                           latency: int) -> list[int]:
    """Drive inputs[t] (port name -> value) in cycle t and read port `output` (unsigned)
    `latency` cycles later, settled before the next rising edge; one value per input."""
    Clock(dut.clk, 10, unit="ns").start()
    got: list[int] = []
    await FallingEdge(dut.clk)
    for t in range(len(inputs) + latency):
        if t < len(inputs):
            for port, v in inputs[t].items():
                getattr(dut, port).value = v  # getattr: `in` is a Python keyword
        await ReadOnly()
        if t >= latency:  # the result of the input driven `latency` cycles ago
            got.append(getattr(dut, output).value.to_unsigned())
        await FallingEdge(dut.clk)
    return got


async def reset(dut: Any, inputs: list[str], outputs: list[str], cycles: int = 3) -> None:
    """Start the clock and hold reset for a few cycles, the streams `inputs` and
    `outputs` (port prefixes such as "s0_axis") idle."""
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst_n.value = 0
    for prefix in inputs:
        getattr(dut, f"{prefix}_tvalid").value = 0
    for prefix in outputs:
        getattr(dut, f"{prefix}_tready").value = 0
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    dut.rst_n.value = 1


class Source:
    """One AXI-Stream input (ports <prefix>_tvalid, _tdata, _tlast) driven from Python:
    `beats` (tdata, tlast) in order, tvalid raised between beats with probability
    valid_prob a cycle and held with its beat until taken. A cycle: `drive` after the
    falling edge, then, in ReadOnly (tready settled, whatever it depends on), `taken`."""

    def __init__(self, dut: Any, prefix: str, beats: list[tuple[int, int]], valid_prob: float,
                 rng: random.Random) -> None:
        self.port = {name: getattr(dut, f"{prefix}_{name}")
                     for name in ("tvalid", "tready", "tdata", "tlast")}
        self.beats, self.valid_prob, self.rng = beats, valid_prob, rng
        self.sent, self.valid = 0, False

    def drive(self) -> None:
        if not self.valid and self.sent < len(self.beats) and self.rng.random() < self.valid_prob:
            self.valid = True
            self.port["tdata"].value, self.port["tlast"].value = self.beats[self.sent]
        self.port["tvalid"].value = int(self.valid)

    def taken(self) -> bool:
        """Whether the beat driven goes in at the coming rising edge (then the next is due)."""
        if not (self.valid and self.port["tready"].value):
            return False
        self.sent, self.valid = self.sent + 1, False
        return True

    def idle(self) -> None:
        self.port["tvalid"].value = 0


def ready_runs(rng: random.Random, ready_prob: float, longest: int = 1) -> Iterator[bool]:
    """An output's tready a cycle: runs of 1 to `longest` cycles, each ready with
    probability ready_prob (longest 1: drawn every cycle; long runs: long stalls)."""
    while True:
        ready = rng.random() < ready_prob
        for _ in range(rng.randint(1, longest)):
            yield ready


def first_difference(got: list[Any], want: list[Any]) -> str:
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    return "" if not bad else (f"{len(bad)} of {len(want)} differ, first input {bad[0]}: "
                               f"{got[bad[0]]} != {want[bad[0]]}")


async def layer_bench(dut: Any) -> None:
    """A layer's stage (one IR layer, job["ir"]) against golden.layer on random frames:
    every beat under each stall pattern, and free-running one frame every job["cycles"]."""
    j = job()
    model = load(Path(j["ir"]))
    layer = model.layers[0]
    inp, out = op(layer).streams(layer)
    x = random_codes(model, j["frames"], seed=j["seed"])
    y = golden.layer(layer, x)
    beats = [(wd, int(k % inp.beats == inp.beats - 1)) for k, wd in enumerate(
        pack_words(encode(x, inp.dtype).reshape(-1, inp.elems), inp.bits))]
    words = pack_words(encode(y, out.dtype).reshape(-1, out.elems), out.bits)
    expected = [(wd, int(k % out.beats == out.beats - 1)) for k, wd in enumerate(words)]
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats, len(expected), pv, pr, seed=j["seed"] + k)
        bad = [i for i, (g, w) in enumerate(zip(r.beats, expected, strict=True)) if g != w]
        assert not bad, f"stalls {pv}/{pr}: {len(bad)} beats differ, first {bad[0]}"
        if k == 0:
            ends = np.diff(r.out_cycles[out.beats - 1::out.beats])
            assert np.all(ends[1:] == j["cycles"]), f"frame intervals {ends}, not {j['cycles']}"
