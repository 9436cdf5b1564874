"""Reading an ONNX file as an untrusted input: a parseable protobuf with nodes and a
quantizer, an acyclic graph, tensors of sane sizes, and external data read only from files
inside the model's own folder (after resolving links), embedded into the loaded model so
that what a build keeps (`copy_self_contained`) is the very model that was lowered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from flow.ir import MAX_WEIGHT_VALUES
from flow.lower.graph import LoweringError

# ONNX element type -> bytes per element of raw data (the types a weight can be stored in)
RAW_ITEM_BYTES: dict[int, int] = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8,
                  onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.INT8: 1,
                  onnx.TensorProto.UINT8: 1, onnx.TensorProto.INT16: 2,
                  onnx.TensorProto.INT32: 4, onnx.TensorProto.INT64: 8,
                  onnx.TensorProto.BOOL: 1}


def tensor_values(tensor: onnx.TensorProto) -> int:
    """Elements of a stored tensor, from its declared dims (nothing read yet)."""
    return int(np.prod([int(d) for d in tensor.dims], dtype=object))


def embed_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read every tensor's external data into the model. A location must name a file
    inside the model's folder: not absolute, no `..`, and no link leading out of it."""
    folder = path.absolute().parent
    root = folder.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = external_data_helper.ExternalDataInfo(tensor)
        where = f"{path}: tensor {tensor.name!r}: external data {info.location!r}"
        location = Path(info.location)
        if not info.location or location.is_absolute() or ".." in location.parts:
            raise LoweringError(f"{where}: must be a file inside the model's folder {folder}")
        file = folder / location
        if not file.resolve().is_relative_to(root):
            raise LoweringError(f"{where}: leads to {file.resolve()}, outside the model's "
                                f"folder {folder} (through a link); refused")
        if not file.is_file():
            raise LoweringError(f"{where}: no such file in {folder}")
        values = tensor_values(tensor)
        if values > MAX_WEIGHT_VALUES:
            raise LoweringError(f"{where}: {values} values, more than qflow's limit of "
                                f"{MAX_WEIGHT_VALUES} per tensor")
        want = values * RAW_ITEM_BYTES.get(tensor.data_type, 0)
        offset = int(info.offset or 0)
        length = int(info.length) if info.length else file.stat().st_size - offset
        if want == 0 or length != want or offset + length > file.stat().st_size:
            raise LoweringError(f"{where}: {length} bytes at offset {offset} of a "
                                f"{file.stat().st_size}-byte file; the tensor's type and dims "
                                f"{list(tensor.dims)} need {want}")
        with open(file, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def check_graph(model: onnx.ModelProto, path: Path) -> None:
    """Nodes present, each tensor made once, no cycle, and stored tensors within the size
    limit and readable (what a quantized graph holds is each frontend's to check)."""
    g = model.graph
    if not g.node:
        raise LoweringError(f"{path}: the graph has no nodes (not a quantized model?)")
    for tensor in external_data_helper._get_all_tensors(model):
        dims = [int(d) for d in tensor.dims]
        if any(d < 0 for d in dims) or tensor_values(tensor) > MAX_WEIGHT_VALUES:
            raise LoweringError(f"{path}: tensor {tensor.name!r} of dims {dims}: qflow takes "
                                f"stored tensors of at most {MAX_WEIGHT_VALUES} values")
        try:
            numpy_helper.to_array(tensor)
        except Exception as e:  # a data field that does not hold dims' values, an odd type
            raise LoweringError(f"{path}: tensor {tensor.name!r} is unreadable "
                                f"({type(e).__name__}: {e})") from e
    producer: dict[str, onnx.NodeProto] = {}
    for n in g.node:
        for o in n.output:
            if o in producer:
                raise LoweringError(f"{path}: node {n.name or '(unnamed)'} ({n.op_type}): "
                                    f"tensor {o!r} is already made by node {producer[o].name}")
            if o:
                producer[o] = n
    # Kahn's algorithm: a node is ready when every input it takes from a node is ready
    done: set[str] = {i.name for i in g.input} | {t.name for t in g.initializer}
    waiting = list(g.node)
    while waiting:
        ready = [n for n in waiting if all(i in done or i not in producer or i == ""
                                           for i in n.input)]
        if not ready:
            n = waiting[0]
            raise LoweringError(f"{path}: node {n.name or '(unnamed)'} ({n.op_type}) is on a "
                                "cycle (or waits for one): an ONNX graph must be acyclic")
        done.update(o for n in ready for o in n.output)
        taken = {id(n) for n in ready}
        waiting = [n for n in waiting if id(n) not in taken]


def read_onnx(path: Path) -> onnx.ModelProto:
    """The ONNX file at `path`, checked (see the module docstring), external data embedded.
    LoweringError naming the file (and the tensor or node) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise LoweringError(f"{path}: no such file" + (" (a folder)" if path.is_dir() else ""))
    if path.stat().st_size == 0:
        raise LoweringError(f"{path}: an empty file (0 bytes), not an ONNX model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise LoweringError(f"{path}: not an ONNX file or truncated ({type(e).__name__}: {e})"
                            ) from e
    embed_external_data(model, path)
    check_graph(model, path)
    return model


def copy_self_contained(src: Path, dest: Path) -> Path:
    """Write the model at `src` (checked, its external data embedded) to `dest` as one
    file: a build holds every byte its model was lowered from."""
    onnx.save(read_onnx(src), str(dest))
    return Path(dest)
