"""Accuracy of the Fashion-MNIST configs against the issue's targets (float MLP ~90 %).

Trains each config into build/<name>/ unless its train.json already exists there
(`--retrain` forces it); LFC takes the longest (tens of minutes on 2 cores)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from flow.atomic import write_json
from flow.train import train

TARGETS = {"fmnist_tfc_w1a1": 0.83, "fmnist_sfc_w2a2": 0.88, "fmnist_lfc_w1a1": 0.88}
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="build/bench/accuracy.json")
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--only", help="comma-separated config names")
    a = p.parse_args()
    results = {}
    for name, target in TARGETS.items():
        if a.only and name not in a.only.split(","):
            continue
        build = ROOT / "build" / name
        if a.retrain or not (build / "train.json").is_file():
            train(ROOT / "configs" / f"{name}.yaml", build)
        r = json.loads((build / "train.json").read_text())
        results[name] = {"test_accuracy": r["test_accuracy"],
                         "float_test_accuracy": r.get("float_test_accuracy"),
                         "target": target, "meets_target": r["test_accuracy"] >= target,
                         "epochs": len(r["epochs"])}
    write_json(Path(a.out), results)


if __name__ == "__main__":
    main()
