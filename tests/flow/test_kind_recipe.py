"""The add-a-kind recipe of docs/architecture.md, followed for a toy kind defined here (negate:
y = -x on codes): registered in the IR's LAYER_KINDS, as a lowering pattern in
flow.lower.PATTERNS and as a golden module in flow.golden.OPS, and nothing else, a QONNX
graph holding a Neg lowers, validates, round-trips through ir.json and runs in golden to
qonnx's executor's outputs; a stage without its module refuses it naming the layer; and
kind_registry refuses what the IR does not know or a kind registered twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import flow.lower
from flow import golden
from flow.backends.firmware import ops as firmware_ops
from flow.backends.hls import ops as hls_ops
from flow.backends.rtl import ops as rtl_ops
from flow.datatypes import DataType, dtype, smallest_int_type
from flow.ir import LAYER_KINDS, Folding, IRError, Layer, kind_registry, load
from flow.lower.graph import Graph, Stream
from flow.lower.linear import Lowered
from flow.reference import qonnx_outputs
from tests.helpers.onnx import quant


@dataclass
class NegateLayer:
    """IR: the toy kind, y = -x on every value of a flat vector of codes."""

    kind: ClassVar[str] = "negate"
    weighted: ClassVar[bool] = False
    name: str
    source: str
    features: int
    input_dtype: DataType
    activation: None = None
    folding: Folding = field(default_factory=Folding)

    in_features = out_features = out_channels = pe_dim = cycles = property(
        lambda self: self.features)
    simd_dim = property(lambda self: 1)
    acc_min = property(lambda self: -self.input_dtype.max)
    acc_max = property(lambda self: -self.input_dtype.min)
    out_dtype = acc_dtype = property(lambda self: smallest_int_type(self.acc_min, self.acc_max))

    def check(self, at: str) -> None:
        if self.features < 1:
            raise IRError(f"{at}: {self.features} features")

    def to_json(self, put: Callable[[str, np.ndarray], str]) -> dict[str, Any]:
        return {"features": self.features, "input_dtype": self.input_dtype.name}

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Callable[[str], np.ndarray]) -> NegateLayer:
        return cls(name=d["name"], source=d["source"], features=int(d["features"]),
                   input_dtype=dtype(d["input_dtype"]))


def module(name: str, **names: Any) -> ModuleType:
    m = ModuleType(name)
    vars(m).update(names)
    return m


def lower_negate(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> Lowered:
    """Lowering: Neg of a quantizer's codes (zero point 0) is the codes negated, same scale."""
    if node.input[0] != x.tensor or np.any(np.asarray(x.q.zero_point) != 0):
        raise g.err(node, "Neg must take the codes of a quantizer with zero point 0")
    layer = NegateLayer(name=name, source=node.name, features=x.index.size, input_dtype=x.dtype)
    q = replace(x.q, bitwidth=layer.out_dtype.bits, signed=True, narrow=False)
    return Lowered(layer, Stream(node.output[0], q, layer.out_dtype, x.index), None, True)


LOWERING = module("negate_pattern", KIND=NegateLayer.kind, OP_TYPES=("Neg",), SPATIAL=False,
                  lower=lower_negate)
GOLDEN = module("negate_golden", KINDS=(NegateLayer,),
                prepare=lambda layer: lambda x: -np.asarray(x, np.int64))


@pytest.fixture
def negate_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe's entries: the IR's LAYER_KINDS, the lowering pattern and golden's OPS."""
    monkeypatch.setitem(LAYER_KINDS, NegateLayer.kind, NegateLayer)
    for op in LOWERING.OP_TYPES:
        monkeypatch.setitem(flow.lower.PATTERNS, op, LOWERING)
    modules = (*dict.fromkeys(golden.OPS.values()), GOLDEN)  # as golden builds OPS
    monkeypatch.setattr(golden, "OPS", kind_registry(modules, "the golden model"))


def negate_graph(path: Path) -> Path:
    """x [1, 4] -> Quant (UINT2) -> MatMul -> Quant (INT2) -> Neg -> MatMul -> y [1, 2],
    weights Quant'd INT2 of scale 1."""
    rng = np.random.default_rng(4)
    nodes, inits = [], []

    def add(made: tuple[onnx.NodeProto, list[onnx.TensorProto]]) -> str:
        nodes.append(made[0])
        inits.extend(made[1])
        return made[0].output[0]

    def weights(name: str, shape: tuple[int, int]) -> str:
        inits.append(numpy_helper.from_array(rng.integers(-2, 2, shape).astype(np.float32), name))
        return add(quant(f"{name}_q", name, 1.0, 2, 1))

    codes = add(quant("q_in", "x", 0.5, 2, 0))
    nodes.append(helper.make_node("MatMul", [codes, weights("w0", (4, 3))], ["m0"], name="mm0"))
    act = add(quant("q_act", "m0", 1.0, 2, 1))
    nodes.append(helper.make_node("Neg", [act], ["neg"], name="negate"))
    nodes.append(helper.make_node("MatMul", ["neg", weights("w1", (3, 2))], ["y"], name="mm1"))
    graph = helper.make_graph(
        nodes, "negate", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(model, str(path))
    return path


def test_the_recipes_entries_are_all_golden_needs(negate_kind: None, tmp_path: Path) -> None:
    path = negate_graph(tmp_path / "negate.onnx")
    model = flow.lower.lower(path)
    assert [(lay.kind, lay.source) for lay in model.layers] == [
        ("dense", "mm0"), ("negate", "negate"), ("dense", "mm1")]
    model.save(tmp_path / "ir")
    model = load(tmp_path / "ir")  # validated; every field written as derived
    x = np.random.default_rng(0).uniform(-0.5, 2, (32, 1, 4)).astype(np.float32)
    codes = golden.quantize_input(model.input, x)
    hidden, negated, _ = golden.trace_codes(model, codes)
    assert np.array_equal(negated, -hidden) and np.any(hidden != 0)
    assert np.array_equal(golden.run(model, x).reshape(32, -1), qonnx_outputs(path, x))


def test_without_the_ir_entry_nothing_registers_it() -> None:
    with pytest.raises(TypeError, match="negate_golden registers NegateLayer, which the IR "
                                        "does not know"):
        kind_registry([GOLDEN], "the golden model")


def test_without_the_pattern_lowering_names_the_node(tmp_path: Path) -> None:
    with pytest.raises(flow.lower.LoweringError, match=r"node negate \(Neg\): op Neg is not "
                                                       "supported here"):
        flow.lower.lower(negate_graph(tmp_path / "negate.onnx"))


def negate_layer() -> Layer:
    return NegateLayer(name="negate1", source="neg_node", features=3,  # type: ignore[return-value]
                       input_dtype=dtype("INT2"))


STAGES: dict[str, Callable[[Layer], object]] = {
    "the rtl backend": rtl_ops.op,
    "the HLS backend": lambda layer: hls_ops.stage(layer, 1),
    "the firmware backend": firmware_ops.op,
    "the golden model": lambda layer: golden.layer(layer, np.zeros((1, 3), np.int64)),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_without_its_module_refuses_it_naming_the_layer(
        stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYER_KINDS, NegateLayer.kind, NegateLayer)  # golden's OPS untouched
    with pytest.raises(IRError, match=rf"layer negate1 \(from neg_node\): kind 'negate' is not "
                                      rf"supported by {stage} \(it handles: "):
        STAGES[stage](negate_layer())


def test_kind_registry_refuses_a_kind_registered_twice(negate_kind: None) -> None:
    again = module("negate_again", KINDS=(NegateLayer,))
    with pytest.raises(TypeError, match="negate_again registers NegateLayer, which the IR does "
                                        "not know or another module already handles"):
        kind_registry([GOLDEN, again], "the golden model")

    class OtherNegate(NegateLayer):  # another class under the kind the IR gives NegateLayer
        pass

    with pytest.raises(TypeError, match="registers OtherNegate"):
        kind_registry([module("other", KINDS=(OtherNegate,))], "the golden model")
