"""RTL test helpers: the cocotb benches of the blocks (tests/cocotb/) and a layer's stage
run in them, and generated model tops (synthetic models, dense and CNN) checked against
golden, free-running and under random stalls."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import golden
from flow.backends import rtl
from flow.ir import Folding, Model
from flow.synthetic import random_cnn_model, random_model, requantize_hidden
from tests.conftest import ROOT, TFC_FOLDING

TB_DIR = ROOT / "tests" / "cocotb"
sys.path.insert(0, str(TB_DIR))  # the benches import tb_common; cocotb imports them by name


def slow(*values: Any) -> Any:
    """A parameter set of the slow run only."""
    return pytest.param(*values, marks=pytest.mark.slow)


def run_block(block: str, params: dict[str, Any], job: dict[str, Any], work: Path) -> None:
    """Build `block` (with the blocks it instantiates) at `params`, run tests/cocotb/tb_<block>
    (the simulator finds the memory images of `work` by their names)."""
    folder = rtl.build_block(block, params)
    rtl.run_cocotb(folder, block, work, f"tb_{block}", {"QFLOW_TB": json.dumps(job)},
                   sorted(work.glob("*.mem")))


def window_stage_case(tmp_path: Path, shape: tuple[int, int, int], in_t: str,
                      spec: dict[str, Any], folding: tuple[int, int],
                      rounding: str | None = None) -> None:
    """One conv or pool layer's stage (conv_layer / pool_layer) against golden.layer,
    requantized in `rounding` if given; a dense layer after it unless it is a conv without
    activation (one output position)."""
    specs = [spec] if "conv" in spec and "act" not in spec else [spec, {"dense": 2, "w": "INT2"}]
    model = random_cnn_model(shape, in_t, specs, seed=sum(shape))
    layer = model.layers[0]
    layer.folding = Folding(*folding)
    if rounding:
        requantize_hidden(model, seed=sum(shape), rounding=rounding)
    model.validate("window_stage_case")
    st = rtl.ops.op(layer).stage(layer, "stage", Path())
    st.write_images(tmp_path)
    model.save(tmp_path)
    run_block(st.module, st.params, {"ir": str(tmp_path), "frames": 5, "seed": 7,
                                     "cycles": st.summary["cycles"]}, tmp_path)


def tfc_like(seed: int = 0) -> Model:
    return random_model([784, 64, 64, 64, 10], ["BIPOLAR"] * 4, ["BIPOLAR"] * 3, "BIPOLAR",
                        TFC_FOLDING, seed=seed, name="tfc_like")


# widths, weight types, activation types, input type, (PE, SIMD) per layer
MIXED = {
    # PE 4 -> SIMD 8 (up), PE 3 -> SIMD 2 (neither divides the other), MAC + ternary + XNOR
    "int_mix": ([32, 16, 12, 6], ["INT4", "TERNARY", "INT2"], ["UINT2", "INT3"], "UINT8",
                [(4, 8), (3, 8), (2, 2)]),
    # 8-bit input into BIPOLAR weights (+x / -x), then XNOR layers, PE 8 -> SIMD 2 (down)
    "bipolar_8bit_in": ([24, 16, 10, 4], ["BIPOLAR", "BIPOLAR", "BIPOLAR"],
                        ["BIPOLAR", "BIPOLAR"], "INT8", [(8, 6), (5, 2), (2, 10)]),
}


# random stalls on both sides of the top, the output waiting longer than the input
STALLS = {"valid_prob": 0.6, "ready_prob": 0.4, "seed": 5}


def check_stalled(model: Model, codes: np.ndarray, build_dir: Path) -> None:
    """Under random input and output stalls nothing is lost or reordered: every output
    equals golden (simulate_codes raises on a misplaced tlast or a beat too many)."""
    acc, _ = rtl.simulate_codes(model, build_dir, codes, **STALLS)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))


# CNNs: (C, H, W) input, input type, layers (synthetic.random_cnn_model), (PE, SIMD) each
CnnSpec = tuple[tuple[int, int, int], str, list[dict[str, Any]], list[tuple[int, int]]]
CNNS: dict[str, CnnSpec] = {
    # 8-bit input into BIPOLAR weights, padded BIPOLAR taps (2-bit codes), a pool, XNOR
    # without padding, a dense layer on the HWC-ordered frame
    "cnv_like": ((3, 8, 8), "UINT8", [
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"pool": 2},
        {"conv": 4, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 5, "w": "BIPOLAR"},
    ], [(4, 3), (8, 4), (4, 1), (2, 8), (5, 4)]),
    # multi-bit: stride 2, 1x1, an overlapping padded pool, k 5, a conv to one position last
    "int_cnn": ((2, 9, 9), "INT4", [
        {"conv": 6, "k": 3, "stride": 2, "pad": 1, "w": "INT3", "act": "UINT2"},
        {"conv": 4, "k": 1, "w": "TERNARY", "act": "INT3"},
        {"pool": 3, "stride": 2, "pad": 1},
        {"conv": 3, "k": 3, "w": "INT2"},
    ], [(3, 2), (2, 6), (2, 1), (1, 4)]),
    # depthwise (vvau, PE channels a beat, SIMD 1) between pointwise convolutions
    "depthwise_cnn": ((4, 7, 7), "BIPOLAR", [
        {"conv": 0, "k": 3, "pad": 1, "w": "INT2", "act": "UINT2", "depthwise": True},
        {"conv": 6, "k": 1, "w": "TERNARY", "act": "INT3"},
        {"conv": 0, "k": 3, "stride": 2, "w": "INT3", "act": "BIPOLAR", "depthwise": True},
        {"dense": 3, "w": "BIPOLAR"},
    ], [(2, 1), (3, 4), (6, 1), (1, 6)]),
    # pads as wide as the kernel: rows of padding only at the top and before the last row
    "wide_pads_cnn": ((2, 4, 5), "BIPOLAR", [
        {"conv": 4, "k": 1, "pad": 2, "w": "INT3", "act": "UINT4"},
        {"conv": 3, "k": 3, "pad": 4, "stride": 2, "w": "INT2", "act": "BIPOLAR"},
        {"avgpool": 2, "stride": 1, "pad": 3, "shift": 1, "out": "INT4"},
        {"dense": 3, "w": "INT2"},
    ], [(2, 2), (3, 4), (1, 1), (3, 4)]),
}


def cnn(name: str, seed: int = 2) -> Model:
    shape, in_t, layers, folding = CNNS[name]
    model = random_cnn_model(shape, in_t, layers, seed=seed, name=name)
    for layer, (pe, simd) in zip(model.layers, folding, strict=True):
        layer.folding = Folding(pe, simd)
    model.validate(name)
    return model


def check_cnn(model: Model, codes: np.ndarray, build_dir: Path) -> dict[str, Any]:
    """As check, against the generator's expected initiation interval (the IR's unless a
    window stage is bound by its input)."""
    outputs, details = rtl.simulate(model, build_dir, codes)
    np.testing.assert_array_equal(outputs["rtl"], golden.run_codes(model, codes))
    assert details["initiation_interval_cycles"] == details["expected_initiation_interval"]
    assert details["latency_cycles"] == details["expected_latency"]
    check_stalled(model, codes, build_dir)
    return details
