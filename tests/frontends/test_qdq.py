"""The ONNX QDQ frontend (flow/frontends/qdq.py): models quantized by onnxruntime in the
test lower to IRs whose golden model equals onnxruntime on the file as given, and qonnx's
executor on its QONNX form, wherever the IR claims exactness (and within one output step,
on rare samples, where it declares a layer inexact); what the frontend cannot read is
refused naming the node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flow import golden
from flow.data import load_digits
from flow.frontends import load
from flow.lower import LoweringError, lower
from flow.reference import onnxruntime_outputs, qonnx_outputs
from tests.helpers.qdq import calibration_reader, input_shape, qdq_model

CASES = [(arch, pc, act) for arch in ("mlp", "cnn") for pc in (False, True)
         for act in ("QUInt8", "QInt8")] + [("mobile", True, "QUInt8"), ("mobile", False, "QInt8"),
                                            ("residual", True, "QUInt8"),
                                            ("residual", False, "QInt8")]
KINDS = {"mlp": ["dense"] * 3, "cnn": ["conv2d", "maxpool", "conv2d", "dense"],
         # ReLU6 is the quantizer's clamp; the global pool a depthwise sum into its quantizer
         "mobile": ["conv2d"] * 4 + ["dense"],
         # the add's branches have scales calibrated apart: aligned approximately, declared
         "residual": ["conv2d"] * 3 + ["add", "conv2d", "dense"]}


@pytest.mark.parametrize("arch,per_channel,activations", CASES,
                         ids=[f"{a}-{'pc' if p else 'pt'}-{t}" for a, p, t in CASES])
def test_golden_against_onnxruntime(tmp_path: Path, arch: str, per_channel: bool,
                                   activations: str) -> None:
    path = qdq_model(tmp_path, arch, per_channel, activations)
    model = lower(path)
    assert model.meta["frontend"] == "qdq"
    # the output Q/DQ pair is the last layer's quantizer: its codes leave the model
    assert model.layers[-1].activation is not None
    assert [layer.kind for layer in model.layers] == KINDS[arch]
    x = load_digits().x_test[:120].reshape(-1, *input_shape(arch))
    ours = golden.run(model, x.reshape(len(x), -1)).reshape(len(x), -1)
    normalized, _ = load(path)
    onnx.save(normalized, str(tmp_path / "normalized.qonnx.onnx"))
    step = model.output.acc_scale[0]
    for theirs in (onnxruntime_outputs(path, x),
                   qonnx_outputs(tmp_path / "normalized.qonnx.onnx", x)):
        equal = np.all(ours == theirs, axis=1)
        if not model.meta["inexact_layers"]:
            assert equal.all()
        # float scales: the float graph's float32 sums decide a code at a step's edge, which
        # the IR declares (inexact_layers); it moves an output by one step on rare samples
        assert np.abs(ours - theirs).max() <= step * (1 + 1e-6)
        assert equal.mean() >= 0.95, f"{(~equal).sum()} of {len(x)} samples differ"


def _graph(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], out_shape: list[int],
           path: Path) -> Path:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return path


SCALE = {"s": np.array(0.5, np.float32), "z": np.array(0, np.uint8)}


def test_weights_per_channel_become_a_quant_of_their_values(tmp_path: Path) -> None:
    w = np.array([[1, -2, 3, -4], [5, 6, -7, 8]], np.int8)  # [out, in]
    ws = np.array([0.25, 0.125], np.float32)
    path = _graph([
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], name="wdq", axis=0),
        helper.make_node("Gemm", ["xd", "wd"], ["y"], name="fc", transB=1),
    ], {**SCALE, "w": w, "ws": ws, "wz": np.zeros(2, np.int8)}, [1, 2], tmp_path / "m.onnx")
    normalized, frontend = load(path)
    assert frontend.NAME == "qdq"
    ops = [n.op_type for n in normalized.graph.node]
    assert ops == ["Quant", "Quant", "Gemm"] and "QuantizeLinear" not in ops
    model = lower(path)
    assert np.array_equal(model.layers[0].weights, w)  # the stored codes, per channel
    x = np.array([[0.5, 1.0, 2.0, 126.0]], np.float32)  # the last saturates at 255 * 0.5
    assert np.array_equal(golden.run(model, x).reshape(1, -1), onnxruntime_outputs(path, x))


def test_requantization_of_the_same_grid_is_removed(tmp_path: Path) -> None:
    """A Q/DQ pair after a Reshape, equal to the one before it, is the identity."""
    path = _graph([
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["a"], name="q1"),
        helper.make_node("DequantizeLinear", ["a", "s", "z"], ["b"], name="dq1"),
        helper.make_node("Reshape", ["b", "shape"], ["c"], name="reshape"),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["d"], name="q2"),
        helper.make_node("DequantizeLinear", ["d", "s", "z"], ["y"], name="dq2"),
    ], {**SCALE, "shape": np.array([1, 4], np.int64)}, [1, 4], tmp_path / "m.onnx")
    ops = [n.op_type for n in load(path)[0].graph.node]
    assert ops == ["Quant", "Reshape", "Quant"]  # the graph's output keeps its own node
    path2 = _graph([
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["a"], name="q1"),
        helper.make_node("DequantizeLinear", ["a", "s", "z"], ["b"], name="dq1"),
        helper.make_node("Reshape", ["b", "shape"], ["c"], name="reshape"),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["d"], name="q2"),
        helper.make_node("DequantizeLinear", ["d", "s", "z"], ["e"], name="dq2"),
        helper.make_node("Relu", ["e"], ["y"], name="relu"),
    ], {**SCALE, "shape": np.array([1, 4], np.int64)}, [1, 4], tmp_path / "m2.onnx")
    normalized = load(path2)[0]
    assert [n.op_type for n in normalized.graph.node] == ["Quant", "Reshape", "Relu"]
    assert normalized.graph.node[2].input[0] == "c"


@pytest.mark.parametrize("nodes,inits,named,why", [
    ([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y8"], name="q_out"),
      helper.make_node("Cast", ["y8"], ["y"], name="cast")], {}, "q_out", "feed a Cast"),
    ([helper.make_node("Mul", ["x", "x"], ["s2"], name="square"),
      helper.make_node("QuantizeLinear", ["x", "s2", "z"], ["a"], name="q_dynamic"),
      helper.make_node("DequantizeLinear", ["a", "s", "z"], ["y"], name="dq")], {},
     "q_dynamic", "computed at run time"),
    ([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["a"], name="q"),
      helper.make_node("DequantizeLinear", ["a", "s2", "z"], ["y"], name="dq_other")],
     {"s2": np.array(0.25, np.float32)}, "dq_other", "but q quantized with 0.5"),
    ([helper.make_node("QuantizeLinear", ["x", "s", "z16"], ["a"], name="q32"),
      helper.make_node("DequantizeLinear", ["a", "s", "z16"], ["y"], name="dq")],
     {"z16": np.array(0, np.int32)}, "q32", "codes of type INT32"),
    ([helper.make_node("ConstantOfShape", ["big"], ["zz"], name="huge"),
      helper.make_node("QuantizeLinear", ["x", "s", "z"], ["a"], name="q"),
      helper.make_node("DequantizeLinear", ["a", "s", "zz"], ["y"], name="dq")],
     {"big": np.array([2**40], np.int64)}, "huge", "larger than"),
    ([helper.make_node("ConstantOfShape", ["big"], ["zz"], name="wraps"),
      helper.make_node("QuantizeLinear", ["x", "s", "z"], ["a"], name="q"),
      helper.make_node("DequantizeLinear", ["a", "s", "zz"], ["y"], name="dq")],
     {"big": np.array([2**32, 2**32], np.int64)}, "wraps", "larger than"),
    ([helper.make_node("Cast", ["s"], ["s8"], name="cast_nowhere"),
      helper.make_node("QuantizeLinear", ["x", "s8", "z"], ["a"], name="q"),
      helper.make_node("DequantizeLinear", ["a", "s", "z"], ["y"], name="dq")],
     {}, "cast_nowhere", "unknown type"),
], ids=["codes-leave", "dynamic-scale", "scales-differ", "int32-codes", "constant-bomb",
        "constant-bomb-int64-wrap", "cast-without-type"])
def test_what_the_frontend_cannot_read_is_refused_by_node(
        tmp_path: Path, nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], named: str,
        why: str) -> None:
    path = _graph(nodes, {**SCALE, **inits}, [1, 4], tmp_path / "bad.onnx")
    with pytest.raises(LoweringError) as e:
        load(path)
    assert f"node '{named}'" in str(e.value) and why in str(e.value)
    assert str(path) in str(e.value)


def test_onnxruntime_qoperator_format_is_refused_naming_it(tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantFormat, quantize_static

    qdq = qdq_model(tmp_path, "mlp", per_channel=False)  # exports mlp.onnx beside it
    out = tmp_path / "qop.onnx"
    quantize_static(str(tmp_path / "mlp.onnx"), str(out), calibration_reader("mlp"),
                    quant_format=QuantFormat.QOperator)
    assert qdq.is_file()
    with pytest.raises(LoweringError, match="QOperator format") as e:
        lower(out)
    assert str(out) in str(e.value)
