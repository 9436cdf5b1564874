"""Hostile and hand-edited model files: ONNX files (malformed, oversized, external data
outside their folder, bad attributes and quantizers, graphs no frontend reads) and the
IR's ir.json / ir.npz; each is refused naming the file and the node or layer, before
anything runs, and nothing in them is executed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_external_data_outside_the_model_folder_is_refused(tfc_onnx: Path,
                                                           tmp_path: Path) -> None:
    """A tensor's external data must be a file of the model's folder; what is read becomes
    part of the model the build keeps."""
    import onnx
    from onnx import external_data_helper

    from flow.frontends.onnxfile import copy_self_contained
    from flow.lower import LoweringError, lower

    model_dir, elsewhere = tmp_path / "model", tmp_path / "elsewhere"
    model_dir.mkdir()
    elsewhere.mkdir()
    m = onnx.load(str(tfc_onnx))
    external_data_helper.convert_model_to_external_data(m, location="w.bin", size_threshold=0)
    onnx.save(m, str(model_dir / "m.onnx"))
    lower(model_dir / "m.onnx")  # data beside the model: read
    copy_self_contained(model_dir / "m.onnx", tmp_path / "copy.onnx")
    copied = onnx.load(str(tmp_path / "copy.onnx"), load_external_data=False)
    assert not any(external_data_helper.uses_external_data(t) for t in copied.graph.initializer)
    lower(tmp_path / "copy.onnx")  # the copy needs nothing beside it

    (model_dir / "w.bin").rename(elsewhere / "w.bin")
    (model_dir / "w.bin").symlink_to(elsewhere / "w.bin")
    with pytest.raises(LoweringError, match=r"m\.onnx: tensor .*'w\.bin': leads to .*elsewhere"):
        lower(model_dir / "m.onnx")
    with pytest.raises(LoweringError, match="outside the model's folder"):
        copy_self_contained(model_dir / "m.onnx", tmp_path / "copy2.onnx")
    for location in ("../elsewhere/w.bin", str(elsewhere / "w.bin")):
        for t in m.graph.initializer:
            for entry in t.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(m, str(model_dir / "m.onnx"))
        with pytest.raises(LoweringError, match="must be a file inside the model's folder"):
            lower(model_dir / "m.onnx")


def mutated(src: Path, dest: Path, edit: object) -> Path:
    """A copy of the ONNX file at `src` with `edit(model)` applied."""
    import onnx

    m = onnx.load(str(src))
    edit(m)  # type: ignore[operator]
    onnx.save(m, str(dest))
    return dest


def set_input_dims(dims: list[int]) -> object:
    def edit(m: object) -> None:
        for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim, dims, strict=True):  # type: ignore[attr-defined]
            d.dim_value = v
    return edit


def test_malformed_and_oversized_onnx_files_name_the_file(digits_build: Path,
                                                          tmp_path: Path) -> None:
    from flow.lower import LoweringError, lower

    src = digits_build / "model.qonnx.onnx"
    data = src.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.onnx").write_text("hello\n")
    (tmp_path / "empty.onnx").write_bytes(b"")

    def no_nodes(m: object) -> None:
        del m.graph.node[:]  # type: ignore[attr-defined]

    def cycle(m: object) -> None:  # the first quantizer takes the last node's output
        m.graph.node[1].input[0] = m.graph.node[-1].output[0]  # type: ignore[attr-defined]

    cases = {
        "truncated.onnx": "not an ONNX file or truncated",
        "text.onnx": "not an ONNX file or truncated",
        "empty.onnx": "an empty file (0 bytes)",
        mutated(src, tmp_path / "nodes.onnx", no_nodes).name: "the graph has no nodes",
        mutated(src, tmp_path / "cycle.onnx", cycle).name: "is on a cycle",
        mutated(src, tmp_path / "huge.onnx", set_input_dims([1, 100000, 100000, 1])).name:
            "10000000000 values per sample, more than qflow's limit of 4194304",
        mutated(src, tmp_path / "zero.onnx", set_input_dims([1, 0, 8, 8])).name:
            "(0, 8, 8): every dimension must be 1 or more",
        mutated(src, tmp_path / "negative.onnx", set_input_dims([1, 1, -8, 8])).name:
            "(1, -8, 8): every dimension must be 1 or more",
    }
    for name, message in cases.items():
        with pytest.raises(LoweringError) as e:
            lower(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and message in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small binary CNN on (1, 8, 8): Conv 3x3 pad 1, MaxPool 2, dense layers."""
    import torch

    from flow.export import export_qonnx
    from tests.helpers.models import BIN, U8, SmallCNN, randomized

    net = randomized(SmallCNN((1, 8, 8), [{"out": 4, "pad": 1, "pool": "after"}], U8, BIN,
                              BIN), (1, 8, 8), 0)
    return export_qonnx(net, torch.rand(1, 1, 8, 8), tmp_path_factory.mktemp("cnn") / "c.onnx")


@pytest.mark.parametrize(("op", "attr", "value", "message"), [
    ("Conv", "strides", [0, 1], "positive kernel and strides"),
    ("Conv", "pads", [-1, 0, 0, 0], "4 pads >= 0"),
    ("MaxPool", "pads", [2, 2, 2, 2], "padding only: ONNX's MaxPool outputs -inf"),
    ("Conv", "dilations", [2, 2], "dilations [2, 2] are not supported"),
    ("MaxPool", "strides", [0, 0], "positive kernel and strides"),
    ("MaxPool", "kernel_shape", [0, 2], "positive kernel and strides"),
    ("MaxPool", "kernel_shape", [5000, 5000], "every dimension must be 1 or more"),
])
def test_window_attributes_are_checked_before_use(cnn_onnx: Path, tmp_path: Path, op: str,
                                                  attr: str, value: list[int],
                                                  message: str) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        node = next(n for n in m.graph.node if n.op_type == op)  # type: ignore[attr-defined]
        kept = [a for a in node.attribute if a.name != attr]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(attr, value)])

    lower(cnn_onnx)
    path = mutated(cnn_onnx, tmp_path / "m.onnx", edit)
    with pytest.raises(LoweringError, match=f"m.onnx: node .*{op}.*: .*{message}".replace(
            "[", r"\[").replace("]", r"\]")):
        lower(path)


def test_huge_pool_output_is_refused_before_it_is_made(cnn_onnx: Path, tmp_path: Path) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:  # kernel 4097 with pads 4096 on each side, stride 1
        node = next(n for n in m.graph.node if n.op_type == "MaxPool")  # type: ignore[attr-defined]
        del node.attribute[:]
        node.attribute.extend([helper.make_attribute("kernel_shape", [4097, 4097]),
                               helper.make_attribute("pads", [4096] * 4),
                               helper.make_attribute("strides", [1, 1])])

    with pytest.raises(LoweringError, match="more than qflow's limit of 4194304 per tensor"):
        lower(mutated(cnn_onnx, tmp_path / "m.onnx", edit))


@pytest.mark.parametrize(("index", "value", "message"), [
    (1, 0.0, "scale .* must be finite and nonzero"),
    (1, float("nan"), "scale .* must be finite and nonzero"),
    (3, 0.0, "bit width 0.0 must be one integer in 1..32"),
    (3, 64.0, "bit width 64.0 must be one integer in 1..32"),
    (2, 0.5, "zero point must be an integer"),
])
def test_quantizer_parameters_name_the_node(digits_build: Path, tmp_path: Path, index: int,
                                            value: float, message: str) -> None:
    from onnx import numpy_helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        q = next(n for n in m.graph.node if n.op_type == "Quant")  # type: ignore[attr-defined]
        for t in m.graph.initializer:  # type: ignore[attr-defined]
            if t.name == q.input[index]:
                t.CopyFrom(numpy_helper.from_array(
                    np.full(tuple(t.dims), value, np.float32), t.name))

    path = mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit)
    with pytest.raises(LoweringError, match=f"m.onnx: node .*Quant.*: {message}"):
        lower(path)


def edited_ir(build: Path, folder: Path, doc_edit: object = None, array_edit: object = None
              ) -> Path:
    """A copy of the build's ir.json / ir.npz, edited as a user might by hand."""
    import json

    folder.mkdir()
    doc = json.loads((build / "ir.json").read_text())
    with np.load(build / "ir.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if doc_edit:
        doc_edit(doc)  # type: ignore[operator]
    if array_edit:
        array_edit(arrays)  # type: ignore[operator]
    (folder / "ir.json").write_text(json.dumps(doc))
    np.savez(folder / "ir.npz", **arrays, allow_pickle=True)  # type: ignore[arg-type]
    return folder


@pytest.mark.parametrize(("doc_edit", "array_edit", "message"), [
    (lambda d: d["layers"][1].update(cycles=1), None,
     r"ir.json: layer 1 \(dense1\): cycles is 1, but the IR's other fields give 128"),
    (lambda d: d["layers"][1].update(out_dtype="INT999"), None,
     r"layer 1 \(dense1\): out_dtype is 'INT999'"),
    (lambda d: d["layers"][0].update(weight_dtype="INT999"), None,
     r"layer 0 \(dense0\): malformed .*unknown datatype 'INT999'"),
    (lambda d: d["layers"][1].update(acc_dtype="INT64"), None, "acc_dtype is 'INT64'"),
    (lambda d: d.update(initiation_interval=1), None, "initiation_interval is 1"),
    (lambda d: d["input"].update(features=3), None, "input.features is 3"),
    (lambda d: d["layers"][0].update(unknown=1), None, "unknown is 1, .*not a field"),
    (lambda d: d["layers"][2].update(acc_min=-2**70), None, "within 64 bits"),
    (None, lambda a: a.update(extra=np.zeros(3)), r"ir.npz: arrays \['extra'\] are not named"),
    (None, lambda a: a.pop("dense1.weights"), "array 'dense1.weights' named by ir.json is missing"),
    (None, lambda a: a.update({"dense1.weights": np.array([{"x": 1}], dtype=object)}),
     "ir.npz: unreadable .*allow_pickle=False"),
    (None, lambda a: a.update({"output.acc_scale": a["output.acc_scale"] * np.nan}),
     "output scales and ops must be finite"),
    (None, lambda a: a.update({"output.op1": np.full_like(a["output.op1"], np.inf)}),
     "output scales and ops must be finite"),
])
def test_hand_edited_ir_is_refused_naming_file_and_layer(
        digits_build: Path, tmp_path: Path, doc_edit: object, array_edit: object,
        message: str) -> None:
    from flow.ir import IRError, load

    folder = edited_ir(digits_build, tmp_path / "ir", doc_edit, array_edit)
    with pytest.raises(IRError, match=message):
        load(folder)


def test_a_constant_without_a_tensor_names_the_node(digits_build: Path, tmp_path: Path) -> None:
    from onnx import helper

    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        m.graph.node.insert(0, helper.make_node(  # type: ignore[attr-defined]
            "Constant", [], ["c"], name="odd", value_float=1.0))

    with pytest.raises(LoweringError, match=r"node odd \(Constant\): a Constant must hold one "
                                            "tensor"):
        lower(mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit))


def test_a_tensor_made_twice_names_the_node(digits_build: Path, tmp_path: Path) -> None:
    from flow.lower import LoweringError, lower

    def edit(m: object) -> None:
        nodes = m.graph.node  # type: ignore[attr-defined]
        nodes[2].output[0] = nodes[1].output[0]

    with pytest.raises(LoweringError, match="is already made by node"):
        lower(mutated(digits_build / "model.qonnx.onnx", tmp_path / "m.onnx", edit))


def test_frontends_read_qonnx_and_name_what_they_do_not(tmp_path: Path) -> None:
    """A QDQ graph (QuantizeLinear/DequantizeLinear) is read by its frontend, into QONNX; a
    float graph without quantizers is refused by name."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from flow import frontends
    from flow.lower import LoweringError

    def save(nodes: list, inits: list, name: str) -> Path:
        g = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              inits)
        path = tmp_path / name
        onnx.save(helper.make_model(g), path)
        return path

    scale = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    qdq = save([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], [scale, zero],
               "qdq.onnx")
    normalized, frontend = frontends.load(qdq)
    assert frontend.NAME == "qdq"
    assert [n.op_type for n in normalized.graph.node] == ["Quant"]
    plain = save([helper.make_node("Relu", ["x"], ["y"])], [], "float.onnx")
    with pytest.raises(LoweringError, match=r"float.onnx: no Quant/BipolarQuant or "
                                            r"QuantizeLinear/DequantizeLinear node"):
        frontends.load(plain)
