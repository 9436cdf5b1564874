"""The rtl/ blocks, each in its own cocotb bench (tests/cocotb/tb_*.py) under Verilator:
random parameters and data, edge values, random stalls on tvalid and tready."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from flow.backends import rtl
from flow.synthetic import random_model

TB_DIR = Path(__file__).resolve().parent / "cocotb"
sys.path.insert(0, str(TB_DIR))  # the benches import tb_common; cocotb imports them by name


def run_block(block: str, params: dict[str, Any], job: dict[str, Any], work: Path) -> None:
    """Build `block` (with the blocks it instantiates) at `params`, run tests/cocotb/tb_<block>."""
    folder = rtl.build_block(block, params)
    rtl.run_cocotb(folder, block, work, f"tb_{block}", {"QFLOW_TB": json.dumps(job)})


@pytest.mark.parametrize("width, depth", [(8, 4), (33, 1), (1, 5)])
def test_axis_fifo(width: int, depth: int, tmp_path: Path) -> None:
    params = {"WIDTH": width, "DEPTH": depth}
    run_block("axis_fifo", params, {**params, "n": 200, "seed": width}, tmp_path)


# (N, IN_BITS, SIGNED, STAGE_LEVELS): odd sizes, one operand, combinational, every level
TREE_CASES = [(49, 1, 0, 2), (64, 1, 0, 2), (13, 9, 1, 2), (7, 4, 1, 1), (1, 3, 1, 2),
              (33, 17, 1, 3), (255, 1, 0, 2), (6, 5, 0, 0)]


@pytest.mark.parametrize("n, bits, signed, k", TREE_CASES)
def test_adder_tree(n: int, bits: int, signed: int, k: int, tmp_path: Path) -> None:
    params = {"N": n, "IN_BITS": bits, "SIGNED": signed, "STAGE_LEVELS": k}
    run_block("adder_tree", params, {**params, "vectors": 200, "seed": n}, tmp_path)


DWC_CASES = [(1, 16, 8), (2, 4, 6), (8, 6, 4), (3, 1, 7), (4, 5, 5)]


@pytest.mark.parametrize("bits, a, b", DWC_CASES)
def test_axis_dwc(bits: int, a: int, b: int, tmp_path: Path) -> None:
    params = {"ELEM_BITS": bits, "IN_ELEMS": a, "OUT_ELEMS": b}
    run_block("axis_dwc", params, {**params, "frames": 30, "seed": a * 10 + b}, tmp_path)


# (in, out, PE, SIMD, input type, weight type, output type or None for the last layer)
MVAU_CASES = [
    (48, 12, 4, 8, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # XNOR-popcount, thresholds
    (30, 6, 3, 5, "BIPOLAR", "BIPOLAR", None),  # XNOR, accumulators out
    (16, 8, 2, 16, "UINT8", "BIPOLAR", "UINT2"),  # weight selects +x / -x
    (12, 6, 6, 3, "INT4", "TERNARY", "INT3"),  # MAC with ternary weights
    (20, 4, 1, 2, "UINT2", "INT3", None),  # MAC, accumulators out
    (96, 16, 2, 4, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # 192-deep weights: block RAM, latency 2
]
MVAU_SLOW = [
    (64, 16, 8, 64, "INT8", "INT8", None),  # one beat per pass: a result every cycle
    (64, 16, 16, 1, "INT8", "INT8", None),  # one lane, all rows at once
    (36, 9, 9, 36, "BIPOLAR", "INT2", "UINT4"),  # input selects +w / -w; one cycle per vector
    (50, 10, 5, 10, "UINT3", "UINT4", "BIPOLAR"),
    (784, 64, 16, 49, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # TFC's first layer
]


def mvau_case(tmp_path: Path, mw: int, mh: int, pe: int, simd: int, in_t: str, w_t: str,
              out_t: str | None) -> None:
    if out_t is None:
        model = random_model([mw, mh], [w_t], [], in_t, [(pe, simd)], seed=mw + mh)
    else:  # a hidden layer: the next layer only gives it an activation
        model = random_model([mw, mh, 2], [w_t, "INT2"], [out_t], in_t, [(pe, simd), (1, 1)],
                             seed=mw + mh)
    # memory images named relative to the folder the bench runs in: one build for every run
    stage = rtl.dense.stage(model.layers[0], "mvau", Path())
    stage.write_images(tmp_path)
    model.save(tmp_path)
    run_block("mvau", stage.params, {"ir": str(tmp_path), "vectors": 40, "seed": pe}, tmp_path)


@pytest.mark.parametrize("case", MVAU_CASES, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}")
def test_mvau(case: tuple, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case)


@pytest.mark.slow
@pytest.mark.parametrize("case", MVAU_SLOW, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}-{c[2]}x{c[3]}")
def test_mvau_slow(case: tuple, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case)

