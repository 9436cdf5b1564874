"""Run every benchmark module (bench/bench_*.py) with --out DIR/<name>.json, then print
a summary. `python -m bench --only golden,rtl` runs a subset."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--out", default="build/bench")
    p.add_argument("--only", help="comma-separated names (golden, rtl, synth, firmware, ...)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(f.stem.removeprefix("bench_") for f in HERE.glob("bench_*.py"))
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
    failed = []
    for name in names:
        target = out / f"{name}.json"
        print(f"bench: {name} -> {target}", flush=True)
        r = subprocess.run([sys.executable, "-m", f"bench.bench_{name}", "--out", str(target)])
        if r.returncode:
            failed.append(name)
            continue
        print(json.dumps(json.loads(target.read_text()), indent=2))
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
