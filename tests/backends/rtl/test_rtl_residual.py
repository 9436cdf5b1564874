"""Residual graphs in RTL (issue #26): Brevitas' QuantBasicBlocks lowered to a graph, the
top built with a fork where a tensor has two readers, an add_layer where branches join and
a FIFO on every edge sized by the cycle model (the skip path's from the main branch's
latency and burstiness): outputs equal golden free-running, the initiation interval and
latency as predicted, and under random input and output stalls; an undersized skip FIFO is
refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import rtl
from flow.backends.rtl import top
from flow.ir import Model
from flow.lower import lower
from tests.helpers.residual import residual_inputs, residual_onnx
from tests.helpers.rtl import check_stalled

SHAPE = (1, 8, 8)


def residual_model(folder: Path, act_bits: int) -> Model:
    """An identity block (the stem's quantizer shared) then a projection block."""
    return lower(residual_onnx(folder, SHAPE, 8, [(8, 1), (16, 2)], act_bits=act_bits))


@pytest.mark.parametrize("act_bits", [8, pytest.param(4, marks=pytest.mark.slow)])
def test_residual_top_equals_golden(act_bits: int, tmp_path: Path) -> None:
    model = residual_model(tmp_path, act_bits)
    codes = golden.quantize_input(model.input, residual_inputs(SHAPE, 6).reshape(6, -1))
    outputs, details = rtl.simulate(model, tmp_path, codes)
    np.testing.assert_array_equal(outputs["rtl"], golden.run_codes(model, codes))
    assert details["initiation_interval_cycles"] == model.initiation_interval
    assert details["latency_cycles"] == details["expected_latency"]
    check_stalled(model, codes, tmp_path)
    source = next((tmp_path / "rtl").glob("*_top.sv")).read_text()
    assert source.count("axis_fork #(") == 2 and source.count("add_layer #(") == 2


def test_skip_fifos_are_sized_by_the_cycle_model(tmp_path: Path) -> None:
    model = residual_model(tmp_path, 8)
    edges, depths = top.edges(model), top.fifo_depths(model)
    into_adds = {(model.layers[e.src].name, model.layers[e.dst].name): d
                 for e, d in zip(edges, depths, strict=True) if model.layers[e.dst].kind == "add"}
    # the stem's output waits at the first add for the block's two convolutions (its fork
    # feeds conv2d1 too); the projection's at the second for the block's main branch
    skips = {("conv2d0", "add3"), ("conv2d5", "add7")}
    assert set(into_adds) == skips | {("conv2d2", "add3"), ("conv2d6", "add7")}
    assert all(into_adds[k] > 2 for k in skips), into_adds
    short = [d - 1 if (model.layers[e.src].name, model.layers[e.dst].name) in skips else d
             for e, d in zip(edges, depths, strict=True)]
    with pytest.raises(ValueError, match=r"FIFO l0_f\d_fifo \(conv2d0 -> add3\) of \d+ beats "
                                         "is undersized"):
        rtl.generate(model, tmp_path, fifo_depths=short)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_synthetic_graph_forks_the_input(seed: int, tmp_path: Path) -> None:
    """The model's input read by two stages (a fork at the top's input, a FIFO each), adds
    of inputs of different types with signed weights, random folding: equal to golden
    free-running and under stalls, latency as predicted."""
    from flow import synthetic
    from tests.helpers.backends import random_folding
    from tests.helpers.residual import synthetic_graph

    model = random_folding(synthetic_graph(seed), np.random.default_rng(seed))
    codes = synthetic.random_codes(model, 12, seed)
    outputs, details = rtl.simulate(model, tmp_path, codes)
    np.testing.assert_array_equal(outputs["rtl"], golden.run_codes(model, codes))
    assert details["latency_cycles"] == details["expected_latency"]
    check_stalled(model, codes, tmp_path)
    source = next((tmp_path / "rtl").glob("*_top.sv")).read_text()
    assert "axis_fork #(.N_OUT(2)" in source and " in_fork (" in source
