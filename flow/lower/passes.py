"""Graph rewrites run before pattern matching, in the order of `PASSES` (as FINN runs its
transformations): each pass takes the normalized QONNX model, rewrites its graph in place
and returns it. A pass changes how the graph is written, never a value it computes: every
tensor that remains holds what it held, the graph's output included. `lower` records in
the IR's `meta.passes` the passes that changed the graph.

What is a rewrite here and what is not: a pass needs nothing but the graph. Decisions that
need a layer's analysis stay with the patterns: which constants are quantized weights
(their Quant stays a node, `Graph.const` folds the others on demand), where a MaxPool in a
float tail may run on the codes (`flow.lower.linear`), and how layout ops move the stream's
elements (`flow.lower.graph.follow_layout`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import numpy_helper

Pass = Callable[[onnx.ModelProto], onnx.ModelProto]


def inline_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """A Constant node holding one tensor (its `value` attribute, nothing else) becomes an
    initializer of the same name: the same tensor under the same name, so every consumer
    reads the same value. Constants of another form stay nodes (lowering refuses them)."""
    g = model.graph
    for node in [n for n in g.node if n.op_type == "Constant"]:
        value = node.attribute[0] if len(node.attribute) == 1 else None
        if value is None or value.name != "value" or value.type != onnx.AttributeProto.TENSOR:
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value.t)
        tensor.name = node.output[0]
        g.initializer.append(tensor)
        g.node.remove(node)
    return model


def remove_identities(model: onnx.ModelProto) -> onnx.ModelProto:
    """Identity nodes, and Dropout nodes that do not train (`dropout_is_identity`), are
    removed: their output is their input, so their consumers read the input instead. One
    that gives the graph's output renames its input's producer's output to that name; it
    stays only where its input is the graph's input or a constant (no node to rename)."""
    g = model.graph
    consts = {t.name: t for t in g.initializer}
    graph_io = {v.name for v in (*g.input, *g.output)}
    for node in [n for n in g.node if n.op_type in ("Identity", "Dropout")]:
        if node.op_type == "Dropout" and not dropout_is_identity(model, node, consts):
            continue
        source, target = node.input[0], node.output[0]
        if target not in graph_io:
            g.node.remove(node)
            rename(g, target, source)
        elif source not in graph_io and source not in consts:
            g.node.remove(node)
            rename(g, source, target)  # the graph's output keeps its name
    return model


def dropout_is_identity(model: onnx.ModelProto, node: onnx.NodeProto,
                        consts: dict[str, onnx.TensorProto]) -> bool:
    """Whether a Dropout outputs its input: nothing reads its mask, and it does not train
    (opset 12 on: its training_mode input absent or a constant false; before opset 7: its
    is_test attribute set, as it trains by default there)."""
    g = model.graph
    mask = node.output[1] if len(node.output) > 1 else ""
    if mask and (any(mask in n.input for n in g.node) or mask in {o.name for o in g.output}):
        return False
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 7:
        is_test = next((a.i for a in node.attribute if a.name == "is_test"), 0)
        return bool(is_test)
    training = node.input[2] if len(node.input) > 2 else ""
    return not training or (training in consts
                            and not np.any(numpy_helper.to_array(consts[training])))


def rename(g: onnx.GraphProto, old: str, new: str) -> None:
    """Every use of tensor `old` (as a node's output or input, a graph output, or in
    value_info) becomes `new`; value_info of the name that goes is dropped."""
    for n in g.node:
        for k, o in enumerate(n.output):
            if o == old:
                n.output[k] = new
        for k, i in enumerate(n.input):
            if i == old:
                n.input[k] = new
    for v in g.output:
        if v.name == old:
            v.name = new
    kept = [v for v in g.value_info if v.name != old]
    del g.value_info[:]
    g.value_info.extend(kept)


PASSES: tuple[Pass, ...] = (inline_constants, remove_identities)


def run_passes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """The model after every pass of PASSES in order, and the names of those that changed
    its graph."""
    changed = []
    for rewrite in PASSES:
        before = onnx.GraphProto()
        before.CopyFrom(model.graph)
        model = rewrite(model)
        if model.graph != before:
            changed.append(rewrite.__name__)
    return model, changed
