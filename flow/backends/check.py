"""The skeleton of every backend check command (`qflow sim`, `qflow hls`, `qflow firmware`):
load the IR, take the input codes (the build's test split or --inputs, quantized by the
IR's input stage), run the backend, compare each of its outputs with the golden model,
write build_dir/<name>.json and fail when any sample differs."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden
from flow.argtypes import positive_int
from flow.buildfolder import writing
from flow.inputs import command_codes
from flow.ir import Model, load
from flow.results import write_result

log = logging.getLogger("qflow")

# runs the backend on codes of the input contract: ({output name: int64 accumulators [N, C]}, details)
Execute = Callable[[Model, Path, np.ndarray], tuple[dict[str, np.ndarray], dict[str, Any]]]

DIFFERING_LISTED = 100  # sample indices listed per output in the report


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The arguments every check command takes: the build folder and what to run it on."""
    s.add_argument("build_dir")
    s.add_argument("--inputs", help="float inputs (.npy), as `qflow run` takes them "
                                    "(default: the build's test split)")
    s.add_argument("--limit", type=positive_int, help="use only the first N samples")


def agreement(outputs: dict[str, np.ndarray], reference: np.ndarray) -> dict[str, Any]:
    """Per output: how many samples equal the reference exactly, and which do not."""
    out: dict[str, Any] = {}
    for name, acc in outputs.items():
        equal = np.all(np.asarray(acc) == reference, axis=1)
        out[name] = {"equal": int(equal.sum()),
                     "differing_samples": np.flatnonzero(~equal)[:DIFFERING_LISTED].tolist()}
    return out


def run_check(name: str, build_dir: Path, inputs: str | Path | None, limit: int | None,
              execute: Execute) -> dict[str, Any]:
    """The whole check; returns the report written to build_dir/<name>.json (or, on part of
    the test split or other inputs, <name>.subset.json)."""
    with writing(build_dir) as folder:
        return _run_check(name, folder, inputs, limit, execute)


def _run_check(name: str, build_dir: Path, inputs: str | Path | None, limit: int | None,
               execute: Execute) -> dict[str, Any]:
    model = load(build_dir)
    # quantized by the IR's own input stage: inside the input contract by construction
    codes = command_codes(model, inputs, limit)
    log.info("%s: %s on %d samples", name, model.name, len(codes))
    outputs, details = execute(model, build_dir, codes)
    agree = agreement(outputs, golden.run_codes(model, codes))
    report: dict[str, Any] = {
        "model": model.name, "samples": len(codes),
        "all_equal": all(a["equal"] == len(codes) for a in agree.values()),
        "agreement": agree, **details,
    }
    path = write_result(build_dir, name, model, report, inputs is None and limit is None)
    for out_name, a in agree.items():
        log.info("%s: %s: %d/%d samples equal the golden model", name, out_name, a["equal"],
                 len(codes))
    log.info("%s: report -> %s", name, path)
    if not report["all_equal"]:
        bad = {k: a["differing_samples"][:10] for k, a in agree.items() if a["equal"] != len(codes)}
        raise RuntimeError(f"{name}: outputs differ from the golden model, e.g. samples {bad} "
                           f"(see {path})")
    return report
