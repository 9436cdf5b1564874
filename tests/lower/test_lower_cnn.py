"""Stage tests of CNN lowering: golden model == qonnx's executor, exactly, on every sample,
for Brevitas CNNs built here over the variants (kernels, strides, padding, depthwise, odd
sizes, weight and activation types) and for Brevitas' own BNN-PYNQ CNV; and the exactness
traps: padding of BIPOLAR and zero-pointed codes, the channel order where the conv stack
meets the dense layers, MaxPool before and after the quantizer, accumulator widths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from brevitas.nn import QuantLinear
from torch import nn

from flow import golden
from flow.cli import main
from flow.export import export_qonnx
from flow.ir import Conv2dLayer, DenseLayer, Model, accumulator_bounds, load
from flow.lower import LoweringError, lower
from flow.reference import qonnx_outputs
from tests.conftest import export_bnn_pynq
from tests.helpers.backends import every_backend_equals_golden
from tests.helpers.models import BIN, MLP_VARIANTS, U8, SmallCNN, inputs, random_mlp, randomized


def check_equal(path: Path, x: np.ndarray, torch_model: nn.Module | None = None) -> Model:
    model = lower(path, activation="thresholds")  # exact (the 8-bit ones requantized: test_w8a8)
    ours = golden.run(model, x).reshape(len(x), -1)
    theirs = qonnx_outputs(path, x)
    assert np.array_equal(ours, theirs), f"{(ours != theirs).any(axis=1).sum()} samples differ"
    if torch_model is not None:
        with torch.no_grad():
            bt = torch_model(torch.from_numpy(x)).numpy().reshape(len(x), -1)
        assert np.array_equal(ours.argmax(1), bt.argmax(1))
    for layer in model.layers:  # thresholds inside the accumulator's bound
        if layer.activation is not None:
            t = layer.activation.values
            assert t.min() >= layer.acc_min and t.max() <= layer.acc_max + 1, layer.name
    return model


# name -> (input shape, blocks, input, weight, activation quantizer specs)
VARIANTS: dict[str, tuple[tuple[int, int, int], list[dict[str, Any]], dict, dict, dict]] = {
    # FINN#996: the float graph pads BIPOLAR activations with 0, neither -1 nor +1
    "binary-pad1": ((3, 10, 10), [{"out": 16, "pad": 1, "pool": "after"},
                                  {"out": 24, "pad": 1}], BIN, BIN, BIN),
    # a zero point: padding is the code of float 0, not code 0
    "asym-input-k5-pad2-stride2": (
        (3, 11, 11), [{"out": 8, "k": 5, "pad": 2, "stride": 2},
                      {"out": 10, "k": 3, "pad": 1}],
        {"quant": "int_asym", "bits": 8}, {"quant": "int", "bits": 4, "per_channel": True},
        {"quant": "uint", "bits": 4}),
    "depthwise-ternary": (
        (5, 9, 9), [{"out": 12, "k": 1}, {"depthwise": True, "pad": 1, "pool": "after"},
                    {"out": 20, "k": 1}],
        U8, {"quant": "ternary"}, {"quant": "int", "bits": 2}),
    "odd-stride2-ceil-bias": (
        (3, 13, 13), [{"out": 7, "stride": 2, "bias": True, "pool": "after", "ceil": True},
                      {"out": 9, "k": 1, "pad": 0, "pool": "after", "pool_k": 3,
                       "pool_stride": 2, "ceil": True}],
        U8, {"quant": "int", "bits": 2}, {"quant": "uint", "bits": 2}),
    "w8a8-pad1": ((2, 8, 8), [{"out": 6, "pad": 1}, {"out": 5, "k": 5, "pad": 2,
                                                    "pool": "after"}],
                  U8, {"quant": "int", "bits": 8}, {"quant": "uint", "bits": 8, "max_val": 8.0}),
    "xnor-perchannel-int-input": (
        (3, 8, 8), [{"out": 33, "pad": 1, "pool": "after"}, {"out": 17}],
        {"quant": "int", "bits": 8}, {"quant": "binary_xnor", "po2": True}, BIN),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cnn_equals_executor(variant: str, tmp_path: Path) -> None:
    shape, blocks, inp, w, act = VARIANTS[variant]
    net = randomized(SmallCNN(shape, blocks, inp, w, act), shape, seed=len(variant))
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    model = check_equal(path, inputs(shape, 24), net)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2dLayer)]
    assert model.input.channels_last and len(convs) == len(blocks)
    zp = int(model.input.zero_point)
    assert convs[0].pad_value == zp  # the code of float 0 (0 for BIPOLAR)
    if variant.startswith("asym"):
        assert zp != 0 and convs[0].pads == (2, 2, 2, 2)
    if variant.startswith("binary"):
        assert convs[1].input_dtype.is_bipolar and convs[1].pad_value == 0
    if variant.startswith("depthwise"):
        assert convs[1].depthwise and convs[1].weights.shape == (12, 3, 3, 1)


def test_channels_last_flatten(tmp_path: Path) -> None:
    """A graph that transposes to NHWC before flattening: its order is the IR's already."""
    shape = (3, 9, 9)
    net = randomized(SmallCNN(shape, [{"out": 6, "pool": "after"}], U8, BIN, BIN,
                              channels_last_flatten=True), shape, seed=3)
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    check_equal(path, inputs(shape, 16), net)


def test_dense_columns_follow_hwc_order(tmp_path: Path) -> None:
    """FINN#288/#298: the first dense layer's columns are the graph's NCHW flatten order
    permuted to the IR's (H, W, C) frames; identity only where the frame is 1x1."""
    shape = (2, 6, 6)
    net = randomized(SmallCNN(shape, [{"out": 4, "pool": "after"}], U8, BIN, BIN),
                     shape, seed=5)
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    model = check_equal(path, inputs(shape, 16), net)
    dense, linear = model.layers[2], net.head[0]
    assert isinstance(dense, DenseLayer) and isinstance(linear, QuantLinear)
    theirs = torch.sign(linear.weight.detach()).numpy()  # [16, C*H*W] in (C, H, W)
    ours = np.asarray(dense.weights).reshape(16, 2, 2, 4)  # (H, W, C) = (2, 2, 4)
    sign = np.sign(ours[:, 0, 0, 0] * theirs[:, 0])  # rows the lowering negated
    assert np.array_equal(ours.transpose(0, 3, 1, 2).reshape(16, -1) * sign[:, None], theirs)


@pytest.mark.parametrize("negative", [False, True])
def test_maxpool_before_quantizer(negative: bool, tmp_path: Path) -> None:
    """Conv -> BatchNorm -> MaxPool -> quantizer: moved onto the codes when every channel's
    tail is non-decreasing; a clear error naming the MaxPool otherwise."""
    shape = (3, 8, 8)
    blocks = [{"out": 6, "pad": 1, "pool": "before", "act": {"quant": "uint", "bits": 2}},
              {"out": 5, "pool": "before"}]
    net = randomized(SmallCNN(shape, blocks, U8, {"quant": "int", "bits": 3}, BIN), shape,
                     seed=7, positive_gamma=not negative)
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    if negative:
        with pytest.raises(LoweringError, match=r"MaxPool.*does not commute"):
            lower(path)
        return
    model = check_equal(path, inputs(shape, 24), net)
    assert [layer.kind for layer in model.layers] == [
        "conv2d", "maxpool", "conv2d", "maxpool", "dense", "dense"]


def test_accumulator_bound_is_reached(tmp_path: Path) -> None:
    """The first conv's bound is the worst case over its window (pad value included) and
    inputs exist that reach it: codes at the type's ends by the weight's sign."""
    shape = (2, 6, 6)
    net = randomized(SmallCNN(shape, [{"out": 4, "pad": 1}], U8, {"quant": "int", "bits": 4},
                              {"quant": "uint", "bits": 2}), shape, seed=2)
    model = lower(export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx"))
    conv = model.layers[0]
    assert isinstance(conv, Conv2dLayer)
    t = conv.input_dtype
    lo, hi = accumulator_bounds(conv.weights.reshape(conv.out_channels, -1), t.min, t.max)
    assert (conv.acc_min, conv.acc_max) == (lo.min(), hi.max())
    o = int(hi.argmax())
    h, wd, c = conv.in_shape
    frame = np.zeros((h, wd, c), np.int64)  # output (1, 1) of channel o reads rows/cols 0..2
    frame[0:3, 0:3] = np.where(conv.weights[o] > 0, t.max, t.min)
    acc = golden.layer(conv.__class__(**{**vars(conv), "activation": None}),
                       frame.reshape(1, -1)).reshape(conv.out_shape)
    assert acc[1, 1, o] == conv.acc_max
    assert conv.acc_dtype.bits == int(conv.acc_max).bit_length() + 1


@pytest.fixture(scope="module")
def cnv_w1a1_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bnn_pynq("cnv-w1a1", tmp_path_factory.mktemp("cnv"), seed=4)


def test_cnv_compile_run_verify(cnv_w1a1_onnx: Path, tmp_path: Path) -> None:
    """`qflow compile` of CNV-w1a1 (backends without conv are skipped), then `qflow run` on
    golden equals the executor, and `qflow verify --inputs --strict` agrees on every sample."""
    out = tmp_path / "build"
    assert main(["compile", str(cnv_w1a1_onnx), "--out", str(out)]) == 0
    model = load(out)
    assert [layer.kind for layer in model.layers] == ["conv2d", "conv2d", "maxpool"] * 2 + [
        "conv2d", "conv2d", "dense", "dense", "dense"]
    assert model.input.channels_last and model.layers[0].input_dtype.name == "INT8"
    x = inputs((3, 32, 32), 6)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(out), "--backend", "golden", "--inputs", str(tmp_path / "x.npy"),
                 "--outputs", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy").reshape(len(x), -1)
    assert np.array_equal(y, qonnx_outputs(out / "model.qonnx.onnx", x))
    assert main(["verify", str(out), "--inputs", str(tmp_path / "x.npy"), "--strict"]) == 0
    r = json.loads((out / "verify.subset.json").read_text())  # --inputs
    assert r["samples"] == 6 and r["agreement"]["qonnx_executor"]["equal"] == 6


def test_cnv_w2a2_equals_executor(tmp_path: Path) -> None:
    """Golden equals the QONNX executor; finn-examples' CNV-w2a2 folding runs at 115,200
    cycles per frame by FINN's arithmetic (the fourth convolution: 10 x 10 pixels x 1152/16
    x 128/8); pools take the PE of the convolution before them."""
    from flow.export import configure

    path = export_bnn_pynq("cnv-w2a2", tmp_path, seed=4)
    model = check_equal(path, inputs((3, 32, 32), 6))
    assert str(model.layers[1].weight_dtype) == "TERNARY"  # 2-bit narrow: -1, 0, 1
    configure(model, {"preset": "cnv-w2a2"})
    weighted = [(la.folding.pe, la.folding.simd) for la in model.layers if la.weighted]
    assert weighted == [(8, 3), (16, 16), (8, 16), (8, 16), (4, 8), (1, 8),
                        (1, 2), (2, 2), (5, 1)]
    assert [la.folding.pe for la in model.layers if la.kind == "maxpool"] == [16, 8]
    assert model.initiation_interval == 115200
    model.validate("preset")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnv-w1a1", "cnv-w1a2", "cnv-w2a2"])
def test_cnv_equals_executor_many(name: str, tmp_path: Path) -> None:
    path = export_bnn_pynq(name, tmp_path, seed=5)
    check_equal(path, inputs((3, 32, 32), 200, seed=9))


def test_cnv_w1a1_folding_preset(cnv_w1a1_onnx: Path) -> None:
    """finn-examples' CNV-w1a1 folding: 32,768 cycles per frame by FINN's arithmetic (the
    fully connected layers of 512 x 256 and 512 x 512 are the slowest); pools take the PE
    of the convolution before them."""
    from flow.export import configure

    model = lower(cnv_w1a1_onnx)
    configure(model, {"preset": "cnv-w1a1"})
    weighted = [(la.folding.pe, la.folding.simd) for la in model.layers if la.weighted]
    assert weighted == [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32),
                        (1, 4), (1, 8), (5, 1)]
    assert [la.folding.pe for la in model.layers if la.kind == "maxpool"] == [32, 16]
    assert model.initiation_interval == 32768
    model.validate("preset")


def test_folding_preset_must_match_the_model(tmp_path: Path) -> None:
    from flow.export import configure, export_qonnx

    mlp = export_qonnx(random_mlp(MLP_VARIANTS["w1a1-in8"], 1), torch.rand(1, 1, 8, 8),
                       tmp_path / "mlp.onnx")
    with pytest.raises(ValueError, match="preset cnv-w1a1 folds 9 weighted layers, the "
                                         "model has 3"):
        configure(lower(mlp), {"preset": "cnv-w1a1"})


# pads as wide as the kernel: border outputs of 1x1 convs with pad 1 or 2 and of 3x3 convs
# with pad 3 see only padding, whose accumulator is the weights' sum times the pad code (the
# input zero point, not 0, for int_asym; 0 for BIPOLAR); pad 2 and stride 2 put whole rows
# of padding before the last output row
WIDE_PADS = {
    "asym": ((2, 5, 5), [{"out": 4, "k": 1, "pad": 2}, {"out": 3, "k": 3, "pad": 3}],
             {"quant": "int_asym", "bits": 4}, {"quant": "int", "bits": 3},
             {"quant": "uint", "bits": 2}),
    "binary": ((3, 4, 4), [{"out": 5, "k": 1, "pad": 1},
                           {"out": 4, "k": 3, "pad": 3, "stride": 2}],
               BIN, BIN, BIN),
}


@pytest.mark.parametrize("variant", sorted(WIDE_PADS))
def test_pads_as_wide_as_the_kernel(variant: str, tmp_path: Path) -> None:
    """Golden == qonnx's executor, and every backend (RTL simulation, HLS csim, host
    firmware) == golden on the lowered model."""
    shape, blocks, inp, w, act = WIDE_PADS[variant]
    net = randomized(SmallCNN(shape, blocks, inp, w, act), shape, seed=5)
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    model = check_equal(path, inputs(shape, 24), net)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2dLayer)]
    assert all(min(c.pads) >= max(c.kernel) for c in convs)
    if variant == "asym":
        assert convs[0].pad_value != 0
    every_backend_equals_golden(model, golden.quantize_input(model.input, inputs(shape, 16, 3)),
                                tmp_path)
