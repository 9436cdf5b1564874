"""Graph rewrites before matching (flow.lower.passes): each pass on a small hand-built graph
rewrites what it names and leaves the graph's outputs as onnxruntime computes them; a
lowered model records the passes that changed its graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flow.lower import lower
from flow.lower.passes import PASSES, inline_constants, remove_identities, run_passes

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(1, 12)


def model_of(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray] | None = None,
             opset: int = 13) -> onnx.ModelProto:
    """x [1, 12] -> nodes -> y [1, 12]."""
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 12]) for n in ("x", "y")]
    graph = helper.make_graph(nodes, "g", io[:1], io[1:], [
        numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def outputs(model: onnx.ModelProto) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": X})[0]


def rewritten(model: onnx.ModelProto, rewrite: object) -> onnx.ModelProto:
    """The model after `rewrite`, checked to compute the same output."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    after = rewrite(copy)  # type: ignore[operator]
    onnx.checker.check_model(after)
    assert np.array_equal(outputs(after), outputs(model))
    return after


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def test_inline_constants_makes_initializers() -> None:
    value = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(1, 12))
    model = model_of([helper.make_node("Constant", [], ["c"], value=value),
                      helper.make_node("Mul", ["x", "c"], ["m"]),
                      helper.make_node("Constant", [], ["d"], value_float=0.5),
                      helper.make_node("Add", ["m", "d"], ["y"])])
    after = rewritten(model, inline_constants)
    assert ops(after) == ["Mul", "Constant", "Add"]  # value_float: not a tensor, kept
    assert [t.name for t in after.graph.initializer] == ["c"]
    assert np.array_equal(numpy_helper.to_array(after.graph.initializer[0]),
                          np.arange(12).reshape(1, 12))


def test_remove_identities_rewires_consumers() -> None:
    model = model_of([helper.make_node("Identity", ["x"], ["a"]),
                      helper.make_node("Identity", ["a"], ["b"]),  # a chain
                      helper.make_node("Relu", ["b"], ["r"]),
                      helper.make_node("Dropout", ["r"], ["d"]),
                      helper.make_node("Identity", ["w"], ["w2"]),  # of an initializer
                      helper.make_node("Add", ["d", "w2"], ["s"]),
                      helper.make_node("Identity", ["s"], ["y"])],  # gives the output
                     {"w": np.full((1, 12), 0.25, np.float32)})
    after = rewritten(model, remove_identities)
    assert ops(after) == ["Relu", "Add"]
    relu, add = after.graph.node
    assert list(relu.input) == ["x"] and list(add.input) == ["r", "w"]
    assert list(add.output) == ["y"] and after.graph.output[0].name == "y"


def test_an_identity_from_the_input_to_the_output_stays() -> None:
    model = model_of([helper.make_node("Identity", ["x"], ["y"])])
    assert ops(rewritten(model, remove_identities)) == ["Identity"]


@pytest.mark.parametrize("opset", [6, 13])
def test_a_dropout_that_trains_stays(opset: int) -> None:
    """Opset 12 on: training_mode true; before opset 7: is_test unset (training)."""
    if opset < 7:
        nodes = [helper.make_node("Dropout", ["x"], ["y"])]
        inits = {}
    else:
        nodes = [helper.make_node("Dropout", ["x", "ratio", "train"], ["y"])]
        inits = {"ratio": np.array(0.5, np.float32), "train": np.array(True)}
    model = model_of(nodes, inits, opset)
    assert ops(remove_identities(model)) == ["Dropout"]


def test_a_dropout_whose_mask_is_read_stays() -> None:
    model = model_of([helper.make_node("Dropout", ["x"], ["d", "mask"]),
                      helper.make_node("Cast", ["mask"], ["m"], to=TensorProto.FLOAT),
                      helper.make_node("Mul", ["d", "m"], ["y"])])
    assert ops(rewritten(model, remove_identities)) == ["Dropout", "Cast", "Mul"]


def test_run_passes_names_the_passes_that_changed_the_graph() -> None:
    assert [p.__name__ for p in PASSES] == ["inline_constants", "remove_identities"]
    plain = model_of([helper.make_node("Relu", ["x"], ["y"])])
    assert run_passes(plain)[1] == []
    value = numpy_helper.from_array(np.ones((1, 12), np.float32))
    constant = model_of([helper.make_node("Constant", [], ["c"], value=value),
                         helper.make_node("Add", ["x", "c"], ["y"])])
    assert run_passes(constant)[1] == ["inline_constants"]


def test_lowering_records_its_passes_and_lowers_the_same_ir(tfc_onnx: Path,
                                                            tmp_path: Path) -> None:
    """An Identity after every node, and a Constant for a quantizer's scale, lower to the
    IR of the graph without them."""
    model = onnx.load(str(tfc_onnx))
    g = model.graph
    quant = next(n for n in g.node if n.op_type in ("Quant", "BipolarQuant"))
    scale = next(t for t in g.initializer if t.name == quant.input[1])
    g.initializer.remove(scale)
    nodes = [helper.make_node("Constant", [], [scale.name], value=scale)]
    for k, n in enumerate(g.node):
        out = n.output[0]
        n.output[0] = f"{out}__before_identity{k}"
        nodes += [n, helper.make_node("Identity", [n.output[0]], [out], name=f"id{k}")]
    del g.node[:]
    g.node.extend(nodes)
    edited = tmp_path / "edited.onnx"
    onnx.save(model, str(edited))
    plain, after = lower(tfc_onnx, name="m"), lower(edited, name="m")
    assert plain.meta.pop("passes") == []
    assert after.meta.pop("passes") == ["inline_constants", "remove_identities"]
    (doc, arrays), (doc2, arrays2) = plain.serialize(), after.serialize()
    doc2["source"] = doc["source"]
    assert doc2 == doc
    assert all(np.array_equal(arrays[k], arrays2[k]) for k in arrays) and arrays.keys() == arrays2.keys()
