"""Simulating the generated top (Verilator + cocotb, harness.run_bench) and `qflow sim`.

Every entry point checks its input codes against the input contract (flow.inputs) and
regenerates build_dir/rtl/ unless its stamp matches the IR it is given, so a stale folder
never answers for another model.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow.backends.check import add_arguments, run_check
from flow.backends.rtl import harness, top
from flow.backends.rtl.generate import current_manifest
from flow.inputs import check_codes
from flow.ir import Model
from flow.packing import encode, pack_words, unpack_words

log = logging.getLogger("qflow.rtl")


@dataclass
class FrameTiming:
    """Cycle of each frame's first input handshake and last output handshake."""

    frame_start: list[int]
    frame_end: list[int]
    cycles: int  # simulated, the trailing watch included
    wall_seconds: float
    expected_latency: int  # from the folding, pipeline empty and never stalled
    expected_initiation_interval: int


def simulate_codes(model: Model, build_dir: Path, codes: np.ndarray, valid_prob: float = 1.0,
                   ready_prob: float = 1.0, seed: int = 0) -> tuple[np.ndarray, FrameTiming]:
    """Run the generated top on input codes [N, features], with random stalls on the input
    (valid_prob) and the output (ready_prob) below 1; returns the last layer's int64
    accumulators [N, out] and the timing. Raises RuntimeError when an output frame's tlast
    is misplaced, a beat comes beyond the last frame, or the frames take more than
    cycle_budget (a design stuck, never a hang)."""
    codes = check_codes(model, codes, "rtl simulation")
    man = current_manifest(model, build_dir)
    inp, out = top.model_streams(model)
    n = len(codes)
    words = pack_words(encode(codes, inp.dtype).reshape(n * inp.beats, inp.elems), inp.bits)
    beats = [(w, int(k % inp.beats == inp.beats - 1)) for k, w in enumerate(words)]
    folder = harness.build_stream([Path(s) for s in man["sources"]], man["top"], inp.width,
                                  out.width)
    expected = man["expected"]
    t0 = time.perf_counter()
    # any beat still to come would leave within one frame's latency
    r = harness.run_bench(folder, Path(build_dir) / "sim", beats, n * out.beats, valid_prob,
                          ready_prob, seed, trailing_cycles=expected["latency"],
                          max_cycles=cycle_budget(expected, n, inp.beats, out.beats,
                                                  valid_prob, ready_prob),
                          images=[Path(f) for f in man["mem_files"]])
    wall = time.perf_counter() - t0
    if [b[1] for b in r.beats] != [int(k % out.beats == out.beats - 1) for k in range(n * out.beats)]:
        raise RuntimeError("RTL simulation: tlast is not on each frame's last output beat")
    if r.extra_beats:
        raise RuntimeError(f"RTL simulation: {r.extra_beats} output beats after the last frame")
    acc = unpack_words([b[0] for b in r.beats], out.elems, out.bits, out.dtype.signed)
    timing = FrameTiming(r.in_cycles[::inp.beats], r.out_cycles[out.beats - 1::out.beats],
                         r.cycles + expected["latency"], wall, expected["latency"],
                         expected["initiation_interval"])
    return acc.reshape(n, out.beats * out.elems), timing


def cycle_budget(expected: dict[str, int], frames: int, in_beats: int, out_beats: int,
                 valid_prob: float, ready_prob: float) -> int:
    """Cycles a simulation may take before it is declared stuck: twice what the frames need
    at the expected interval and latency, or at the stalled input's or output's rate."""
    rate = max(expected["initiation_interval"], in_beats / max(valid_prob, 0.01),
               out_beats / max(ready_prob, 0.01))
    return int(2 * (frames * rate + expected["latency"])) + 1000


def steady_interval(ends: list[int]) -> int | float | None:
    """Mean cycles between frames over the second half of the run (the pipeline is full);
    an int when the frames are evenly spaced."""
    if len(ends) < 3:
        return None
    m = len(ends) // 2
    span, frames = ends[-1] - ends[m], len(ends) - 1 - m
    return span // frames if span % frames == 0 else span / frames


def simulate(model: Model, build_dir: Path, codes: np.ndarray, valid_prob: float = 1.0,
             ready_prob: float = 1.0, seed: int = 0
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """simulate_codes as flow.backends.check wants it: ({"rtl": accumulators}, timing
    details: latency of the first frame and the worst, initiation interval, both expected
    from the folding, simulated frames and cycles per second of wall time)."""
    acc, t = simulate_codes(model, build_dir, codes, valid_prob, ready_prob, seed)
    latencies = [e - s for s, e in zip(t.frame_start, t.frame_end, strict=True)]
    details = {
        "latency_cycles": latencies[0] if latencies else None,
        "latency_cycles_max": max(latencies, default=None),
        "initiation_interval_cycles": steady_interval(t.frame_end),
        "expected_initiation_interval": t.expected_initiation_interval,
        "expected_latency": t.expected_latency,
        "frames_per_second_wall": len(codes) / t.wall_seconds,
        "cycles_per_second_wall": t.cycles / t.wall_seconds,
    }
    return {"rtl": acc}, details


def run(model: Model, build_dir: Path, codes: np.ndarray, **_: Any) -> np.ndarray:
    """Backend protocol: input codes [N, features] -> the last layer's int64 accumulators."""
    return simulate_codes(model, build_dir, codes)[0]


def check(build_dir: Path, inputs: str | Path | None = None, limit: int | None = None
          ) -> dict[str, Any]:
    """`qflow sim`: simulate the build's IR on its test split (or --inputs), compare with the
    golden model, write build_dir/sim.json; raises when any sample differs."""
    r = run_check("sim", Path(build_dir), inputs, limit, simulate)
    log.info("sim: II %s cycles (expected %d), latency %s cycles (expected %d); %.0f frames/s "
             "simulated", r["initiation_interval_cycles"], r["expected_initiation_interval"],
             r["latency_cycles"], r["expected_latency"], r["frames_per_second_wall"])
    return r


def cmd_sim(a: argparse.Namespace) -> None:
    check(Path(a.build_dir), a.inputs, a.limit)


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sim", help="simulate the generated RTL (Verilator + cocotb): "
                                   "agreement with golden, latency, initiation interval")
    add_arguments(s)
    s.set_defaults(func=cmd_sim)
