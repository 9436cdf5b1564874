"""Average pooling on codes (Brevitas' TruncAvgPool2d, TruncAdaptiveAvgPool2d): the golden
model equals qonnx's executor on every sample, for kernel = stride, a general stride with
padding, global pooling, both roundings, shifts of either sign, channels not a multiple of
32 and odd sizes; the shift-and-round against plain integer division; the IR's round trip;
clear errors naming the node where the float graph has no integer form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from brevitas.nn import (
    QuantConv2d,
    QuantIdentity,
    QuantLinear,
    TruncAdaptiveAvgPool2d,
    TruncAvgPool2d,
)
from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit
from brevitas.quant_tensor import QuantTensor
from torch import nn

from flow import golden
from flow.backends import firmware as fw
from flow.export import export_qonnx
from flow.golden.pool import shift_round
from flow.ir import AvgPoolLayer, IRError, load
from flow.lower import LoweringError, lower
from flow.reference import activation_quantizers
from flow.synthetic import random_cnn_model, random_codes
from flow.train.quantizers import act_quant, weight_quant
from flow.verify import frame_order
from tests.helpers.backends import every_backend_equals_golden, random_folding
from tests.helpers.firmware import HAVE_RV32
from tests.helpers.models import U8, inputs
from tests.helpers.rtl import check_cnn, window_stage_case

W4 = {"quant": "int", "bits": 4}


class PoolNet(nn.Module):
    """Input quantizer, QuantConv2d + BatchNorm2d + activation quantizer (returning its
    QuantTensor), the average pool, optionally a second such conv, then QuantLinear."""

    def __init__(self, shape: tuple[int, int, int], channels: int, act: dict[str, Any],
                 pool: nn.Module, conv_after: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            QuantIdentity(act_quant=act_quant(U8, "input"), return_quant_tensor=True),
            QuantConv2d(shape[0], channels, 3, padding=1, bias=False,
                        weight_quant=weight_quant(W4, "conv")),
            nn.BatchNorm2d(channels),
            QuantIdentity(act_quant=act_quant(act, "act"), return_quant_tensor=True), pool]
        if conv_after:
            layers += [QuantConv2d(channels, 6, 3, bias=False, weight_quant=weight_quant(W4, "c")),
                       nn.BatchNorm2d(6),
                       QuantIdentity(act_quant=act_quant(act, "act"), return_quant_tensor=True)]
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *shape)).value.numel()
        self.head = QuantLinear(n_flat, 10, bias=False, weight_quant=weight_quant(W4, "dense"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x)
        y = y.value if isinstance(y, QuantTensor) else y  # a plain tensor when exporting
        return self.head(y.reshape(y.shape[0], -1))


# name -> (input shape, channels, activation, pool, a conv after the pool)
VARIANTS: dict[str, tuple[tuple[int, int, int], int, dict[str, Any], nn.Module, bool]] = {
    # 4-bit codes, 2x2: 6-bit sums truncated "to 8 bits" shift left by 2
    "k2-uint4-round": ((3, 9, 9), 5, {"quant": "uint", "bits": 4}, TruncAvgPool2d(2), False),
    "k3-stride2-int4-floor": ((2, 11, 11), 7, {"quant": "int", "bits": 4},
                              TruncAvgPool2d(3, stride=2, trunc_quant=TruncTo8bit), True),
    # 8-bit codes summed over a 7x7 frame: a right shift, rounding half to even
    "global-adaptive-uint8-33ch": ((3, 7, 7), 33, {"quant": "uint", "bits": 8, "max_val": 4.0},
                                   TruncAdaptiveAvgPool2d(1), False),
    # kernel = the frame, truncated to 6 bits; a scale that is not a power of two
    "global-kernel-6bit-nonpo2": (
        (3, 5, 5), 9, {"quant": "uint", "bits": 6, "po2": False, "max_val": 3.0},
        TruncAvgPool2d(5, trunc_quant=RoundTo8bit.let(bit_width=6)), False),
    "k2-stride1-int8-floor-odd": ((3, 6, 6), 3, {"quant": "int", "bits": 8, "max_val": 2.0},
                                  TruncAvgPool2d(2, stride=1, trunc_quant=TruncTo8bit), True),
    # BIPOLAR codes (+-1): their window sums are integers too, of the kernel's parity
    "k4-binary": ((3, 9, 9), 5, {"quant": "binary"}, TruncAvgPool2d(4, stride=1), False),
}


def normalized(net: PoolNet, shape: tuple[int, int, int], seed: int) -> PoolNet:
    """Batch norms from the true statistics of random inputs, then a random gain and offset
    near one: activations spread over many codes (random statistics saturate them)."""
    torch.manual_seed(seed)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: the statistics of all batches
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(16, *shape))
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features) + 0.5)
            m.bias.copy_(torch.rand(m.num_features))
    return net.eval()


def export(variant: str, folder: Path) -> tuple[Path, nn.Module]:
    shape, channels, act, pool, after = VARIANTS[variant]
    net = normalized(PoolNet(shape, channels, act, pool, after), shape, seed=len(variant))
    return export_qonnx(net, torch.rand(1, *shape), folder / "m.onnx"), net


def executor_trace(path: Path, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """qonnx's executor: outputs [N, C], and the codes [N, features] (graph order) of every
    activation quantizer and Trunc, in graph order (a Trunc's output is code * its output
    scale, input 4)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(path))
    steps = [n for n in activation_quantizers(mw.graph) + [
        n for n in mw.graph.node if n.op_type == "Trunc"]]
    steps.sort(key=list(mw.graph.node).index)
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    outs, codes = [], []
    for i in range(len(x)):
        ctx = execute_onnx(mw, {iname: x[i:i + 1]}, return_full_exec_context=True)
        outs.append(ctx[oname].reshape(-1))
        codes.append([np.round(ctx[n.output[0]].astype(np.float64)
                               / ctx[n.input[4 if n.op_type == "Trunc" else 1]]).reshape(-1)
                      for n in steps])
    return np.stack(outs), [np.stack(c).astype(np.int64) for c in zip(*codes, strict=True)]


FAST = ("k2-uint4-round", "global-adaptive-uint8-33ch", "k4-binary")


@pytest.mark.parametrize("variant", [v if v in FAST else pytest.param(v, marks=pytest.mark.slow)
                                     for v in sorted(VARIANTS)])
def test_golden_equals_executor(variant: str, tmp_path: Path) -> None:
    """Every layer's codes equal the executor's (the pool's: its Trunc's) on every sample;
    the outputs too, exactly where the float graph is exact (a power-of-two window keeps the
    scales powers of two), else to float32 rounding of the last product (the layers after a
    pool whose window is not a power of two take a scale that is not one)."""
    path, net = export(variant, tmp_path)
    model = lower(path, activation="thresholds")  # exact everywhere, as the executor
    pools = [la for la in model.layers if isinstance(la, AvgPoolLayer)]
    assert len(pools) == 1 and pools[0].name not in model.meta["inexact_layers"]
    x = inputs(VARIANTS[variant][0], 48)
    codes = golden.quantize_input(model.input, x)
    ours = golden.run(model, x).reshape(len(x), -1)
    out, graph_codes = executor_trace(path, x)
    trace = [codes, *golden.trace_codes(model, codes)[:-1]]
    shapes = [model.input.shape[1:] + model.input.shape[:1],
              *(getattr(la, "out_shape", None) for la in model.layers[:-1])]
    assert len(graph_codes) == len(trace)
    for k, (mine, theirs, hwc) in enumerate(zip(trace, graph_codes, shapes, strict=True)):
        assert np.array_equal(mine, frame_order(theirs, hwc)), f"stage {k} differs"
    if model.meta["inexact_layers"]:
        after = [la.name for la in model.layers[model.layers.index(pools[0]) + 1:]]
        assert set(model.meta["inexact_layers"]) <= set(after)
        np.testing.assert_allclose(ours, out, rtol=1e-5, atol=1e-6)
    else:
        assert np.array_equal(ours, out)
    with torch.no_grad():
        brevitas = net(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    assert np.array_equal(ours.argmax(1), brevitas.argmax(1))
    # the pool's codes take many values on these inputs: the comparison can fail
    assert len(np.unique(trace[1 + model.layers.index(pools[0])])) > 8
    model.save(tmp_path / "ir")
    again = load(tmp_path / "ir")
    assert again.layers[model.layers.index(pools[0])] == pools[0]


def test_shift_round_is_integer_division() -> None:
    """Against exact rational rounding (Python's round: half to even; floor division)."""
    acc = np.arange(-300, 300, dtype=np.int64)
    for shift in range(1, 6):
        d = 2**shift
        assert shift_round(acc, shift, "FLOOR").tolist() == [a // d for a in acc.tolist()]
        assert shift_round(acc, shift, "ROUND").tolist() == [round(a / d) for a in acc.tolist()]
    assert shift_round(acc, -3, "ROUND").tolist() == (acc * 8).tolist()


def test_plain_average_pool_is_refused_by_name(tmp_path: Path) -> None:
    """A float AvgPool2d has no Trunc: its output is not an integer code."""
    shape = (3, 6, 6)
    net = PoolNet(shape, 4, {"quant": "uint", "bits": 4}, nn.AvgPool2d(2)).eval()
    path = export_qonnx(net, torch.rand(1, *shape), tmp_path / "m.onnx")
    with pytest.raises(LoweringError, match=r"m\.onnx: node .*\(AveragePool\): an average "
                                            r"pool must feed a QONNX Trunc"):
        lower(path)


def with_pads(path: Path, pads: list[int], count_include_pad: int) -> Path:
    """The graph with its AveragePool padded (Brevitas' TruncAvgPool2d has no padding)."""
    m = onnx.load(path)
    node = next(n for n in m.graph.node if n.op_type == "AveragePool")
    for a in node.attribute:
        if a.name == "pads":
            a.ints[:] = pads
        if a.name == "count_include_pad":
            a.i = count_include_pad
    out = path.with_name("padded.onnx")
    onnx.save(m, out)
    return out


@pytest.mark.slow
def test_padded_pool_equals_executor(tmp_path: Path) -> None:
    """Top/left padding (counted in the window, as ONNX's count_include_pad): padded taps
    add 0 to the sum; 11 x 11 frames keep their 5 x 5 windows, so the graph stays valid."""
    path = with_pads(export("k3-stride2-int4-floor", tmp_path)[0], [1, 1, 0, 0], 1)
    model = lower(path)
    pool = next(la for la in model.layers if isinstance(la, AvgPoolLayer))
    assert pool.pads == (1, 1, 0, 0)
    x = inputs(VARIANTS["k3-stride2-int4-floor"][0], 16)
    codes = golden.quantize_input(model.input, x)
    _, graph_codes = executor_trace(path, x)
    at = model.layers.index(pool)
    mine = golden.trace_codes(model, codes)[at]
    assert np.array_equal(mine, frame_order(graph_codes[at + 1], pool.out_shape))
    with pytest.raises(LoweringError, match=r"\(AveragePool\): padding left out"):
        lower(with_pads(path, [1, 1, 0, 0], 0))


@pytest.mark.slow
def test_trunc_not_of_the_window_sum_is_refused(tmp_path: Path) -> None:
    """A Trunc whose input scale is not the codes' / (kh * kw) reads no integer sum."""
    path, _ = export("k2-uint4-round", tmp_path)
    m = onnx.load(path)
    trunc = next(n for n in m.graph.node if n.op_type == "Trunc")
    scale = next(i for i in m.graph.initializer if i.name == trunc.input[1])
    doubled = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(scale) * 2, "doubled")
    m.graph.initializer.append(doubled)
    trunc.input[1] = "doubled"
    onnx.save(m, tmp_path / "bad.onnx")
    with pytest.raises(LoweringError, match=r"bad\.onnx: node .*\(Trunc\): Trunc's scale .* "
                                            r"is not the window sum of codes"):
        lower(tmp_path / "bad.onnx")


@pytest.mark.slow
def test_global_average_pool_op(tmp_path: Path) -> None:
    """ONNX's GlobalAveragePool in place of Brevitas' ReduceMean: the same global pool."""
    path, _ = export("global-adaptive-uint8-33ch", tmp_path)
    m = onnx.load(path)
    at, mean = next((k, n) for k, n in enumerate(m.graph.node) if n.op_type == "ReduceMean")
    m.graph.node.remove(mean)
    m.graph.node.insert(at, onnx.helper.make_node("GlobalAveragePool", mean.input[:1],
                                                  mean.output, name="gap"))
    path = tmp_path / "gap.onnx"
    onnx.save(m, path)
    model = lower(path)
    assert [la.source for la in model.layers if isinstance(la, AvgPoolLayer)] == ["gap"]
    x = inputs(VARIANTS["global-adaptive-uint8-33ch"][0], 16)
    _, graph_codes = executor_trace(path, x)
    mine = golden.trace_codes(model, golden.quantize_input(model.input, x))
    assert np.array_equal(mine[1], graph_codes[2])


def test_ir_checks_name_the_layer() -> None:
    shape, t, layers = FIRMWARE_CNNS["global"]
    model = random_cnn_model(shape, t, layers, seed=3)
    pool = model.layers[1]
    assert isinstance(pool, AvgPoolLayer)
    pool.rounding = "HALF_UP"
    with pytest.raises(IRError, match=rf"layer 1 \({pool.name}, .*rounding 'HALF_UP'"):
        model.validate("m")
    pool.rounding, pool.clamp = "ROUND", (0, 300)
    with pytest.raises(IRError, match=rf"\({pool.name}, .*\[0, 300\] is not inside UINT8"):
        model.validate("m")


# ---- firmware: host (ASan/UBSan) and RV32IMC equal golden -----------------------------------

FIRMWARE_CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    # a left shift to UINT8, a saturating shift to UINT4 (the clamp), floor on signed codes
    # with padding; 33 channels, odd sizes
    "shifts": ((3, 9, 9), "UINT8", [
        {"conv": 33, "k": 3, "pad": 1, "w": "INT4", "act": "UINT4"},
        {"avgpool": 2, "shift": -2, "out": "UINT8"},
        {"conv": 7, "k": 1, "w": "INT4", "act": "INT4"},
        {"avgpool": 3, "stride": 2, "pad": 1, "shift": 1, "rounding": "FLOOR", "out": "INT8"},
        {"conv": 6, "k": 1, "w": "INT4", "act": "UINT4"},
        {"avgpool": 2, "stride": 1, "shift": 1, "out": "UINT4"},
        {"dense": 4, "w": "INT2"}]),  # pool5: UINT4 sums of 4 halved, clamped at 15
    # global: kernel = the 5 x 5 frame, 8-bit sums rounded half to even
    "global": ((5, 7, 7), "UINT8", [
        {"conv": 35, "k": 3, "w": "INT8", "act": "UINT8"},
        {"avgpool": 5, "shift": 5, "out": "UINT8"},
        {"dense": 3, "w": "INT4"}]),
}


@pytest.mark.parametrize("name, target", [
    ("shifts", "rv32"), pytest.param("shifts", "host", marks=pytest.mark.slow),
    *(pytest.param("global", target, marks=pytest.mark.slow) for target in ("host", "rv32"))])
def test_firmware_equals_golden(tmp_path: Path, name: str, target: str) -> None:
    if target == "rv32" and not HAVE_RV32:
        pytest.skip("riscv64-unknown-elf-gcc / QEMU missing")
    shape, t, layers = FIRMWARE_CNNS[name]
    m = random_cnn_model(shape, t, layers, seed=3, name=name)
    codes = random_codes(m, 24, seed=4)
    pools = [k for k, la in enumerate(m.layers) if isinstance(la, AvgPoolLayer)]
    trace = golden.trace_codes(m, codes)
    for k in pools:  # many codes, signed ones below 0, the saturating one at its top
        assert len(np.unique(trace[k])) >= 5
        assert trace[k].min() < 0 or m.layers[k].out_dtype.min == 0
    acc = fw.run(m, tmp_path, codes, target=target, sanitize=target == "host")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@pytest.mark.slow
def test_brevitas_model_on_firmware(tmp_path: Path) -> None:
    """Lowered from Brevitas (a 3x3 stride-2 TruncAvgPool2d between convs): firmware on
    the host equals golden."""
    path, _ = export("k3-stride2-int4-floor", tmp_path)
    model = lower(path)
    codes = golden.quantize_input(model.input, inputs(VARIANTS["k3-stride2-int4-floor"][0], 16))
    acc = fw.run(model, tmp_path / "fw", codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))


# ---- HLS C simulation equals golden ------------------------------------------------------


@pytest.mark.parametrize("name", ["shifts", pytest.param("global", marks=pytest.mark.slow)])
def test_hls_equals_golden(tmp_path: Path, name: str) -> None:
    from flow import backends
    model = random_folding(random_cnn_model(*FIRMWARE_CNNS[name], seed=3, name=name),
                           np.random.default_rng(5))
    codes = random_codes(model, 24, seed=4)
    assert np.array_equal(backends.run("hls", model, tmp_path, codes),
                          golden.run_codes(model, codes))


# ---- RTL simulation (Verilator) equals golden ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shifts", "global"])
def test_rtl_equals_golden(tmp_path: Path, name: str) -> None:
    model = random_folding(random_cnn_model(*FIRMWARE_CNNS[name], seed=3, name=name),
                           np.random.default_rng(6))
    check_cnn(model, random_codes(model, 8, seed=4), tmp_path)


BACKEND_CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    # windows of padding only (whole rows and columns of them, before the last) sum to 0
    "wide_pads": ((2, 4, 5), "UINT4", [
        {"conv": 4, "k": 1, "pad": 1, "w": "INT3", "act": "UINT4"},
        {"avgpool": 2, "stride": 1, "pad": 3, "shift": 1, "out": "UINT4"},
        {"dense": 3, "w": "INT2"}]),
    # BIPOLAR codes summed as -1 / +1, padded taps as 0 (bits in RTL and HLS: widened),
    # from the input and from a conv's output
    "bipolar": ((3, 5, 5), "BIPOLAR", [
        {"avgpool": 2, "stride": 1, "pad": 1, "shift": 0, "out": "INT4"},
        {"conv": 4, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"avgpool": 3, "stride": 1, "pad": 1, "shift": 1, "rounding": "FLOOR", "out": "INT4"},
        {"dense": 3, "w": "INT2"}]),
}


@pytest.mark.parametrize("name", sorted(BACKEND_CNNS))
def test_every_backend_equals_golden(tmp_path: Path, name: str) -> None:
    model = random_folding(random_cnn_model(*BACKEND_CNNS[name], seed=3, name=name),
                           np.random.default_rng(7))
    every_backend_equals_golden(model, random_codes(model, 12, seed=4), tmp_path)


def test_binary_brevitas_pool_on_every_backend(tmp_path: Path) -> None:
    """Lowered from Brevitas (binary activations, then a 4x4 TruncAvgPool2d)."""
    path, _ = export("k4-binary", tmp_path)
    model = lower(path)
    assert any(isinstance(la, AvgPoolLayer) and la.input_dtype.is_bipolar
               for la in model.layers)
    codes = golden.quantize_input(model.input, inputs(VARIANTS["k4-binary"][0], 8))
    every_backend_equals_golden(model, codes, tmp_path / "backends")


# (C, H, W) input, input type, layer, (PE, SIMD): the stage alone (cocotb, stalls)
RTL_STAGES = [
    ((4, 6, 6), "UINT4", {"avgpool": 2, "shift": -1, "out": "UINT8"}, (2, 1)),
    pytest.param((5, 7, 7), "INT4", {"avgpool": 3, "stride": 2, "pad": 1, "shift": 1,
                                     "out": "INT4"}, (5, 1), marks=pytest.mark.slow),
    pytest.param((3, 5, 5), "UINT8", {"avgpool": 2, "stride": 1, "shift": 3,
                                      "rounding": "FLOOR", "out": "UINT6"}, (1, 1),
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("shape, in_t, spec, folding", RTL_STAGES,
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_rtl_stage(shape: tuple[int, int, int], in_t: str, spec: dict[str, Any],
                   folding: tuple[int, int], tmp_path: Path) -> None:
    window_stage_case(tmp_path, shape, in_t, spec, folding)


def test_window_sum_exactness_is_declared() -> None:
    """Trunc itself divides by a power of two (qonnx rounds log2 of the scales' ratio); a
    window of 9 taps enters only through the float graph's recovery of the sum (x / (s/9)),
    whose float32 error `sum_is_exact` bounds: small sums are proven exact, sums whose
    error could reach half a unit (a non-power-of-two input scale, 2^20 and more) are not,
    and such a pool is listed in meta.inexact_layers (flow.lower.lower)."""
    from flow.lower.avgpool import sum_is_exact
    from flow.lower.graph import QuantParams

    def q(scale: float) -> QuantParams:
        return QuantParams(False, np.array([scale], np.float32), np.zeros(1, np.float32), 8,
                           False, False, "ROUND")

    assert sum_is_exact(q(2.0**-4), 9, 9 * 255, 1.0)
    assert sum_is_exact(q(0.3), 9, 9 * 255, 1.0)
    assert not sum_is_exact(q(0.3), 9, 2**20, 1.0)
    assert not sum_is_exact(q(2.0**-4), 9, 2**24, 1.0)  # past float32's integers
    assert not sum_is_exact(q(2.0**-4), 9, 9 * 255, 1.0 + 1e-3)  # scales that disagree
