"""Residual graphs through the HLS backend (#26): Brevitas' QuantBasicBlocks lowered to a
graph IR (identity and projection shortcuts) and a synthetic graph whose joins' inputs
differ in type and weight (so their order matters), C-simulated equal to the golden model;
the generated top forks a tensor of two readers into FIFOs of fork_edge_depth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from flow import golden, synthetic
from flow.backends import hls
from flow.backends.hls import vendor
from flow.backends.hls.top import Tensor, fork_edge_depth
from flow.ir import MODEL_INPUT, Folding, Model
from flow.lower import lower
from tests.helpers.backends import random_folding
from tests.helpers.residual import random_add, residual_inputs, residual_onnx, synthetic_graph

SHAPE = (1, 8, 8)
SLOW = pytest.mark.slow
# (activation bits, integer types): Brevitas' blocks quantized to 8 (the adds requantize)
# and to 4 bits (the adds threshold), on the fallback types; Xilinx's among the slow tests
BREVITAS_RUNS = [(8, "fallback"), (4, "fallback"),
                 pytest.param(8, "vendor", marks=SLOW), pytest.param(4, "vendor", marks=SLOW)]


def types_option(types: str) -> str | Path:
    """hls.run's vendor_include: the fallback types, or Xilinx's headers (skips when they
    are not installed)."""
    if types == "fallback":
        return types
    include = vendor.installed()
    if include is None:
        pytest.skip(f"Xilinx's ap_int.h / hls_stream.h are not installed ({vendor.AP_TYPES})")
    return include


class ResNets(dict[int, Model]):
    """Brevitas' blocks lowered once per activation width, on first use: a stem, an
    identity block (the stem's output forks into the block and its shortcut) and a
    projection block (the first add's output forks into the block and a 1x1 stride-2
    conv)."""

    def __init__(self, folders: pytest.TempPathFactory) -> None:
        super().__init__()
        self.folders = folders

    def __missing__(self, bits: int) -> Model:
        onnx = residual_onnx(self.folders.mktemp(f"resnet_a{bits}"), SHAPE, 8,
                             [(8, 1), (16, 2)], act_bits=bits)
        self[bits] = lower(onnx)
        return self[bits]


@pytest.fixture(scope="module")
def resnets(tmp_path_factory: pytest.TempPathFactory) -> ResNets:
    return ResNets(tmp_path_factory)


def assert_equal_golden(model: Model, build_dir: Path, codes: np.ndarray, types: str) -> None:
    out = hls.run(model, build_dir, codes, vendor_include=types_option(types))
    ref = golden.run_codes(model, codes)
    bad = np.flatnonzero(np.any(out != ref, axis=1))
    assert not len(bad), f"{len(bad)} of {len(codes)} samples differ, first {bad[:10].tolist()}"


@pytest.mark.parametrize(("bits", "types"), BREVITAS_RUNS)
def test_brevitas_residual_equals_golden(resnets: ResNets, tmp_path: Path, bits: int,
                                         types: str) -> None:
    """Random folding: PE > 1 in the adds, width converters after the forks."""
    model = random_folding(resnets[bits], np.random.default_rng(bits))
    assert {lay.kind for lay in model.layers} >= {"add", "conv2d"} and not model.is_chain
    x = residual_inputs(SHAPE, 24)
    codes = golden.quantize_input(model.input, x.reshape(len(x), -1))
    assert_equal_golden(model, tmp_path, codes, types)


@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=SLOW), pytest.param(3, marks=SLOW)])
def test_synthetic_graph_equals_golden(tmp_path: Path, seed: int) -> None:
    """Input order, signed weights, a fork of the model's input, random folding."""
    model = random_folding(synthetic_graph(seed), np.random.default_rng(seed))
    assert_equal_golden(model, tmp_path, synthetic.random_codes(model, 30, seed), "fallback")


def test_generated_graph_top(tmp_path: Path) -> None:
    """A fork where a tensor has two readers (the model's input, add0), one frame deep; each
    stage reads its inputs in the IR's order; a chain has no fork."""
    model = synthetic_graph(0)
    folds = {"conv0": Folding(2, 4), "add0": Folding(4, 1), "conv1": Folding(1, 2),
             "add1": Folding(2, 1), "dense2": Folding(1, 1)}
    layers = [dataclasses.replace(lay, folding=folds[lay.name])  # type: ignore[type-var]
              for lay in model.layers]
    model = dataclasses.replace(model, layers=layers)
    top = (hls.generate(model, tmp_path) / "graph0_top.cpp").read_text()
    # the input: 120 codes, 4 (conv0's SIMD) a word
    depth = fork_edge_depth(Tensor(MODEL_INPUT, "in0", 4, "qflow::uint_t<4>", 120))
    assert depth == 30
    assert "  hls::stream<ap_uint<4 * qflow::uint_t<4>::bits>> in0_fork[2];\n" \
           f"  QFLOW_HLS(STREAM variable=in0_fork depth={depth})\n" \
           "  qflow::fork<30>(in0, in0_fork);\n" in top
    # add0: 120 codes, 4 (its PE) a word
    assert "QFLOW_HLS(STREAM variable=layer1_out_fork depth=30)" in top
    assert "  qflow::fork<30>(layer1_out, layer1_out_fork);" in top
    assert top.count("qflow::fork<") == 2
    assert "  layer0(in0_fork[0], layer0_out);" in top
    # conv0's PE 2 and add0's input 0 PE 4: a width converter on that edge only
    assert "qflow::dwc<2, 4, qflow::uint_t<3>::bits, 120>(layer0_out, layer1_in0);" in top
    assert "  layer1(layer1_in0, in0_fork[1], layer1_out);" in top
    assert "qflow::dwc<4, 2, qflow::uint_t<3>::bits, 120>(layer1_out_fork[0], layer2_in);" in top
    assert "qflow::dwc<4, 2, qflow::uint_t<3>::bits, 120>(layer1_out_fork[1], layer3_in1);" in top
    assert "qflow::dwc<1, 2, qflow::uint_t<3>::bits, 120>(layer2_out, layer3_in0);" in top
    assert "  layer3(layer3_in0, layer3_in1, layer3_out);" in top
    assert "qflow::add_layer<4, 4, 30, qflow::uint_t<3>, qflow::uint_t<4>, 2, -1>(" in top
    rows = [s.report() for s in hls.stages(model)]
    assert rows[1] == {"name": "add0", "pe": 4, "simd": 1, "cycles": 30, "datapath": "add",
                       "acc_bits": 5}  # 2 * [0, 7] - [0, 15]: [-15, 14]
    chain = synthetic.random_cnn_model((4, 5, 6), "UINT4", [{"dense": 5, "w": "INT3"}])
    assert "qflow::fork" not in hls.sources(chain)["random_cnn_top.cpp"]


def test_add_too_wide_names_the_layer() -> None:
    add = random_add(np.random.default_rng(0), "wide", (1, 1, 2), "INT32", "INT32", (1, 1),
                     "UINT2")
    with pytest.raises(ValueError, match=r"layer 3 \(wide, from synthetic wide\): accumulator "
                                         r"of 33 bits; the HLS templates support at most 32"):
        hls.stage(add, 3)
