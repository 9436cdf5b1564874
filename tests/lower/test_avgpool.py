"""Average pooling on codes (Brevitas' TruncAvgPool2d, TruncAdaptiveAvgPool2d): the golden
model equals qonnx's executor on every sample, for kernel = stride, a general stride with
padding, global pooling, both roundings, shifts of either sign, channels not a multiple of
32 and odd sizes; the shift-and-round against plain integer division; the IR's round trip;
clear errors naming the node where the float graph has no integer form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch
from torch import nn

from flow import golden
from flow.export import export_qonnx
from flow.golden.pool import shift_round
from flow.ir import AvgPoolLayer, IRError, load
from flow.lower import LoweringError, lower
from flow.reference import activation_quantizers
from flow.synthetic import random_cnn_model
from flow.verify import frame_order
from tests.helpers.avgpool import AVGPOOL_CNNS, VARIANTS, PoolNet, export
from tests.helpers.models import inputs


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
    shape, t, layers = AVGPOOL_CNNS["global"]
    model = random_cnn_model(shape, t, layers, seed=3)
    pool = model.layers[1]
    assert isinstance(pool, AvgPoolLayer)
    pool.rounding = "HALF_UP"
    with pytest.raises(IRError, match=rf"layer 1 \({pool.name}, .*rounding 'HALF_UP'"):
        model.validate("m")
    pool.rounding, pool.clamp = "ROUND", (0, 300)
    with pytest.raises(IRError, match=rf"\({pool.name}, .*\[0, 300\] is not inside UINT8"):
        model.validate("m")


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
