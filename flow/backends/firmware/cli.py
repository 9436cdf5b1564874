"""`qflow firmware DIR` (generate, build and run on the host and on RV32IMC, compare with
the golden model, write firmware.json through flow.backends.check) and `qflow flash DIR`
(the example app through ESP-IDF's idf.py)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from flow.backends.check import add_arguments, run_check
from flow.backends.firmware.budget import BUDGETS
from flow.backends.firmware.common import FirmwareError
from flow.backends.firmware.package import generate
from flow.backends.firmware.runner import CLOCK_MHZ, measure
from flow.ir import Model

log = logging.getLogger("qflow.firmware")


def firmware_check(build_dir: Path, inputs: str | None = None, limit: int | None = None,
                   chip: str | None = None) -> dict[str, Any]:
    """`qflow firmware`: regenerate for `chip`, then run_check with outputs "host" and
    "rv32"; returns the report written to build_dir/firmware.json."""

    def execute(model: Model, folder: Path, codes: np.ndarray
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        generate(model, folder, chip)
        return measure(model, folder, codes, chip=chip)

    r = run_check("firmware", Path(build_dir), inputs, limit, execute)
    for part, reason in r.get("skipped", {}).items():
        log.warning("firmware: %s skipped: %s", part, reason)
    if r["instructions_per_inference"] is not None:
        log.info("firmware: %d instructions per inference (~%.0f us at %d MHz, estimate)",
                 r["instructions_per_inference"], r["estimated_latency_us_at_160mhz"], CLOCK_MHZ)
    log.info("firmware: arena %d B, flash %d B of %d B", r["sizes"]["arena_bytes"],
             r["sizes"]["flash_bytes_needed"], r["sizes"]["app_partition_bytes"])
    return r


def _cmd_firmware(a: argparse.Namespace) -> None:
    firmware_check(Path(a.build_dir), a.inputs, a.limit, a.chip)


def _cmd_flash(a: argparse.Namespace) -> None:
    app = Path(a.build_dir) / "firmware"
    if not (app / "CMakeLists.txt").is_file():
        raise FirmwareError(f"{app}: no generated firmware (run `qflow export` or "
                            f"`qflow firmware {a.build_dir}` first)")
    missing = []
    if not os.environ.get("IDF_PATH"):
        missing.append("IDF_PATH is not set")
    if shutil.which("idf.py") is None:
        missing.append("idf.py is not on PATH")
    if not a.port:
        missing.append("no --port given (e.g. /dev/ttyUSB0)")
    if missing:
        raise FirmwareError("flash needs ESP-IDF: " + "; ".join(missing)
                            + ". Install ESP-IDF (v5.x) and run `. $IDF_PATH/export.sh` first.")
    r = subprocess.run(["idf.py", "-C", str(app.resolve()), "-p", a.port, "flash", "monitor"])
    if r.returncode:
        raise FirmwareError(f"idf.py flash monitor failed (exit {r.returncode})")


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add `firmware` and `flash` to the qflow command line."""
    s = sub.add_parser("firmware", help="generate, build (host + RV32 in QEMU) and check the "
                       "C firmware against the golden model; writes firmware.json")
    add_arguments(s)
    s.add_argument("--chip", choices=list(BUDGETS),
                   help="memory budget to check against (default: the config's "
                        "firmware.chip, else esp32)")
    s.set_defaults(func=_cmd_firmware)
    s = sub.add_parser("flash", help="idf.py flash monitor of the example app (needs ESP-IDF)")
    s.add_argument("build_dir")
    s.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    s.set_defaults(func=_cmd_flash)
