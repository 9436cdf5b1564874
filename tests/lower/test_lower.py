"""Stage tests of lowering: golden model == qonnx's executor, exactly, on every sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from flow import golden
from flow.export import export_qonnx
from flow.lower import LoweringError, lower
from flow.reference import qonnx_outputs
from tests.conftest import export_bnn_pynq
from tests.helpers.models import MLP_VARIANTS, random_mlp


def check_against_executor(path: Path, x: np.ndarray, torch_model: torch.nn.Module | None = None
                           ) -> None:
    model = lower(path, activation="thresholds")  # exact for every variant (requant: test_requant)
    ours = golden.run(model, x).reshape(len(x), -1)
    theirs = qonnx_outputs(path, x)
    assert np.array_equal(ours, theirs), f"{(ours != theirs).any(axis=1).sum()} samples differ"
    if torch_model is not None:
        with torch.no_grad():
            bt = torch_model(torch.from_numpy(x)).numpy().reshape(len(x), -1)
        assert np.array_equal(ours.argmax(1), bt.argmax(1))


@pytest.mark.parametrize("variant", sorted(MLP_VARIANTS))
def test_golden_equals_executor(variant: str, tmp_path: Path) -> None:
    torch_model = random_mlp(MLP_VARIANTS[variant], seed=hash(variant) % 1000)
    path = export_qonnx(torch_model, torch.rand(1, 1, 8, 8), tmp_path / "m.onnx")
    x = np.random.default_rng(1).random((48, 1, 8, 8), dtype=np.float32)
    x[0] = 0.0
    x[1] = 1.0
    check_against_executor(path, x, torch_model)


@pytest.mark.parametrize("name", ["tfc-w1a1", "sfc-w2a2", "tfc-w1a2"])
def test_bnn_pynq_equals_executor(name: str, tmp_path: Path) -> None:
    path = export_bnn_pynq(name, tmp_path, seed=3)
    x = np.random.default_rng(2).random((40, 1, 28, 28), dtype=np.float32)
    check_against_executor(path, x)


def test_ir_types_and_bounds(tfc_w1a1: tuple) -> None:
    model, codes = tfc_w1a1
    assert [str(layer.weight_dtype) for layer in model.layers] == ["BIPOLAR"] * 4
    assert model.layers[0].acc_min == -784 and model.layers[0].acc_max == 784
    assert model.layers[0].acc_dtype.bits == 11
    assert model.layers[-1].activation is None
    traced = golden.trace_codes(model, codes)
    for layer, out in zip(model.layers[:-1], traced[:-1], strict=True):
        assert set(np.unique(out)) <= {-1, 1}, layer.name


# ---- errors: clear message naming the node, nothing written --------------------------------

def test_not_onnx(tmp_path: Path) -> None:
    p = tmp_path / "x.onnx"
    p.write_bytes(b"this is not a protobuf at all \x00\xff" * 10)
    with pytest.raises(LoweringError, match="x.onnx"):
        lower(p)


def test_truncated(tmp_path: Path, tfc_onnx: Path) -> None:
    p = tmp_path / "cut.onnx"
    p.write_bytes(tfc_onnx.read_bytes()[:5000])
    with pytest.raises(LoweringError, match="cut.onnx"):
        lower(p)


def test_float_model_is_not_qonnx(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    p = tmp_path / "float.onnx"
    onnx.save(helper.make_model(g), p)
    with pytest.raises(LoweringError, match="not a quantized model"):
        lower(p)


def _edit(src: Path, dst: Path, fn: callable) -> Path:
    m = onnx.load(src)
    fn(m)
    onnx.save(m, dst)
    return dst


def test_unsupported_op_names_node(tmp_path: Path, tfc_onnx: Path) -> None:
    def swap(m: onnx.ModelProto) -> None:
        bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
        bn.op_type, bn.name = "LpNormalization", "the_bad_node"
        del bn.input[1:]
        del bn.attribute[:]

    p = _edit(tfc_onnx, tmp_path / "bad.onnx", swap)
    with pytest.raises(LoweringError, match=r"the_bad_node \(LpNormalization\)"):
        lower(p)


def test_dynamic_shape_rejected(tmp_path: Path, tfc_onnx: Path) -> None:
    def dyn(m: onnx.ModelProto) -> None:
        m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"

    with pytest.raises(LoweringError, match="dynamic dimension 2"):
        lower(_edit(tfc_onnx, tmp_path / "dyn.onnx", dyn))


def test_compile_failure_leaves_nothing(tmp_path: Path) -> None:
    from flow.cli import main

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    out = tmp_path / "out"
    assert main(["compile", str(bad), "--out", str(out)]) == 2
    assert not out.exists() or not any(out.iterdir())
