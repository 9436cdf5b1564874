"""RTL simulation speed: frames per second of wall time through the TFC-like top
(784-64-64-64-10 BIPOLAR at PE/SIMD 16/49, 8/8, 8/8, 10/8), Verilator + cocotb.

    python -m bench.bench_rtl [--frames N] [--out build/bench/rtl.json]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from flow import golden
from flow.atomic import write_json
from flow.backends import rtl
from flow.backends.check import agreement
from flow.synthetic import random_codes, random_model


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--out", default="build/bench/rtl.json")
    a = p.parse_args(argv)
    model = random_model([784, 64, 64, 64, 10], ["BIPOLAR"] * 4, ["BIPOLAR"] * 3, "BIPOLAR",
                         [(16, 49), (8, 8), (8, 8), (10, 8)], seed=0, name="tfc_bench")
    build_dir = Path(a.out).parent / "rtl_tfc"
    rtl.generate(model, build_dir)
    t0 = time.perf_counter()
    rtl.simulate(model, build_dir, random_codes(model, 2))  # Verilator build (cached)
    build_s = time.perf_counter() - t0
    codes = random_codes(model, a.frames)
    outputs, r = rtl.simulate(model, build_dir, codes)
    result = {
        "bench": "rtl_sim_tfc",
        "frames": len(codes),
        "frames_per_second_wall": r["frames_per_second_wall"],
        "cycles_per_second_wall": r["frames_per_second_wall"] * r["initiation_interval_cycles"],
        "initiation_interval_cycles": r["initiation_interval_cycles"],
        "latency_cycles": r["latency_cycles"],
        "agree": agreement(outputs, golden.run_codes(model, codes))["rtl"]["equal"],
        "build_and_first_run_seconds": build_s,
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    write_json(Path(a.out), result)
    return result


if __name__ == "__main__":
    main()
