"""The main job's wall time: `make train export synth` on the embedded default, each target
timed apart (export includes every check: verify, RTL simulation, HLS, firmware), into a
fresh build folder. The target is 5 minutes on 2 cores after set-up.

    python -m bench.bench_main_job [--out build/bench/main_job.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from flow.atomic import write_json

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("train", "export", "synth")
BUDGET_SECONDS = 300


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/bench/main_job.json")
    a = p.parse_args(argv)
    # `make train` replaces an earlier run's build whole (and refuses a folder qflow did not
    # make): every run starts from nothing
    build = Path(a.out).resolve().parent / "main_job"
    seconds: dict[str, float] = {}
    for target in TARGETS:
        t0 = time.perf_counter()
        subprocess.run(["make", "-C", str(ROOT), target, f"BUILD={build}"], check=True)
        seconds[target] = round(time.perf_counter() - t0, 1)
    checks = json.loads((build / "check.json").read_text())["checks"]
    total = round(sum(seconds.values()), 1)
    result = {
        "bench": "main_job", "build": str(build), "seconds": seconds, "total_seconds": total,
        "budget_seconds": BUDGET_SECONDS, "within_budget": total <= BUDGET_SECONDS,
        "checks": {name: c["status"] for name, c in checks.items()},
        "check_seconds": {name: c.get("seconds") for name, c in checks.items()},
        "cpus": os.cpu_count(), "machine": platform.machine(),
    }
    write_json(Path(a.out), result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
