"""Lower a QONNX graph (a Brevitas export or any QONNX file of that shape) to the integer IR.

First the graph rewrites of `flow.lower.passes.PASSES` run (Constant nodes as
initializers, Identity and inference Dropout removed; the IR's meta.passes names those
that changed the graph). Then the graph is read as a chain: the input stage (float
preprocessing up to the input quantizer), then layers, each matched by the pattern of its
kind (`PATTERNS`: op type -> module with `lower`), a weighted layer's float tail and
activation quantizer collapsed into thresholds (`flow.lower.linear`,
`flow.lower.thresholds`), and at the graph's end the output stage. Between layers,
layout ops (Reshape, Flatten, Transpose) only move values: the stream's layout index
follows them (`flow.lower.graph.follow_layout`), and the layer that takes them reads its
inputs in the IR's order. Adding a layer kind adds one pattern module here.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from flow import frontends  # the module, not its names: frontends import flow.lower.graph
from flow.ir import MODEL_INPUT, InputStage, Layer, Model, OutputStage, Requant
from flow.ir.requant import ROUNDINGS
from flow.lower import add, avgpool, conv, dense, pool
from flow.lower.graph import (
    ARITH,
    LAYOUT_OPS,
    QUANT_OPS,
    SHAPE_OPS,
    Graph,
    LoweringError,
    Stream,
    elementwise,
    follow_layout,
    frame_index,
    input_shape,
    next_node,
)
from flow.lower.linear import Lowered
from flow.lower.passes import run_passes

# ONNX op type -> the module whose lower() turns it (and what it needs) into a layer of
# its KIND
PATTERNS: dict[str, ModuleType] = {op: m for m in (dense, conv, pool, avgpool, add)
                               for op in m.OP_TYPES}

__all__ = ["ACTIVATION_FORMS", "DEFAULT_ACTIVATION_FORM", "DEFAULT_ROUNDING", "PATTERNS",
           "LoweringError", "lower"]


def skip_layout(g: Graph, tensor: str, index: np.ndarray
                ) -> tuple[onnx.NodeProto | None, str, np.ndarray]:
    """Past the layout ops from `tensor`: the next node, its input and the index there."""
    node = next_node(g, tensor)
    while node is not None and node.op_type in LAYOUT_OPS:
        index = follow_layout(g, node, index)
        tensor, node = node.output[0], next_node(g, node.output[0])
    return node, tensor, index


def input_stage(g: Graph) -> tuple[InputStage, Stream]:
    """Elementwise preprocessing up to the first quantizer, and that quantizer. The codes
    leave channel-last when the first layer takes frames."""
    tensor, shape = input_shape(g)
    index = np.arange(int(np.prod(shape))).reshape(shape)
    pre = []
    node = next_node(g, tensor)
    while node is not None and node.op_type not in QUANT_OPS:
        if node.op_type not in SHAPE_OPS | set(ARITH) | {"BatchNormalization"}:
            raise g.err(node, "op not supported before the input quantizer")
        pre += elementwise(g, node, tensor, index.shape)
        if node.op_type in SHAPE_OPS:
            index = follow_layout(g, node, index)
        tensor, node = node.output[0], next_node(g, node.output[0])
    if node is None:
        raise g.err(None, "no input quantizer found on the path from the input")
    q = g.quant_params(node)
    if q.scale.size != 1 or q.zero_point.size != 1:
        raise g.err(node, "the input quantizer needs one scale and zero point (per tensor)")
    first, _, _ = skip_layout(g, node.output[0], index)
    channels_last = first is not None and first.op_type in PATTERNS and \
        PATTERNS[first.op_type].SPATIAL
    if channels_last:
        if len(shape) != 3 or index.shape != shape:
            raise g.err(first, f"takes frames, but the input {shape} is not (C, H, W) or is "
                               "reshaped before its quantizer")
        index = frame_index(shape)  # type: ignore[arg-type]
    stage = InputStage(shape=shape, preprocess=pre, kind="bipolar" if q.bipolar else "int",
                       scale=float(q.scale.reshape(-1)[0]),
                       zero_point=float(q.zero_point.reshape(-1)[0]), bitwidth=q.bitwidth,
                       signed=q.signed, narrow=q.narrow, out_dtype=q.dtype,
                       channels_last=channels_last)
    return stage, Stream(node.output[0], q, q.dtype, index)


def branches(g: Graph, tensor: str, index: np.ndarray
             ) -> list[tuple[onnx.NodeProto, str, np.ndarray]]:
    """Every node that reads the codes on `tensor`, past layout ops (each followed on its
    own, as a tensor may feed several): the node, the tensor it reads and the index there."""
    out = []
    for node in g.consumers.get(tensor, []):
        if node.op_type in LAYOUT_OPS:
            out += branches(g, node.output[0], follow_layout(g, node, index))
        else:
            out.append((node, tensor, index))
    return out


class Walk:
    """The graph lowered layer by layer from the input's codes: every stream (a quantizer's
    codes) is followed to each node that reads it (a fork feeds several), a layer is lowered
    when all its input streams are reached (an Add: both), so layers come out in a
    topological order, each naming the layers it reads."""

    def __init__(self, g: Graph):
        self.g = g
        self.layers: list[Layer] = []
        self.inputs: dict[str, tuple[str, ...]] = {}
        self.inexact: list[str] = []
        self.requantized: dict[str, dict[str, Any]] = {}
        self.kept: dict[str, dict[str, Any]] = {}  # flow.lower.linear.Lowered.kept_thresholds
        self.producer: dict[str, str] = {}  # stream tensor -> the layer (or input) it comes from
        self.tensors: dict[str, str] = {}  # layer -> its activation quantizer's output tensor

    def run(self, first: Stream) -> OutputStage:
        g = self.g
        self.producer[first.tensor] = MODEL_INPUT
        ready = deque([first])
        joins: dict[str, dict[int, Stream]] = {}  # an Add's operands reached so far
        output: OutputStage | None = None
        while ready:
            stream = ready.popleft()
            reached = branches(g, stream.tensor, stream.index)
            if not reached:
                last = self.layers[-1] if self.layers else None
                if last is None or not last.weighted or stream.index.ndim != 1 or ready or \
                        self.producer[stream.tensor] != last.name:
                    raise g.err(None, "the graph ends before a layer with weights")
                output = dequantized_output(stream, last.out_channels)
                continue
            for node, tensor, index in reached:
                at = Stream(tensor, stream.q, stream.dtype, index)
                if node.op_type not in PATTERNS:
                    raise g.err(node, f"op {node.op_type} is not supported here (qflow lowers "
                                      f"{', '.join(sorted(PATTERNS))} layers)")
                pattern = PATTERNS[node.op_type]
                if getattr(pattern, "ARITY", 1) == 1:
                    done = pattern.lower(g, node, at, f"{pattern.KIND}{len(self.layers)}")
                    after = self.record(done, (self.producer[stream.tensor],))
                else:
                    operands = joins.setdefault(node.name, {})
                    for slot, name in enumerate(node.input):
                        if name == tensor and slot not in operands:
                            operands[slot] = at
                            self.producer[tensor] = self.producer[stream.tensor]
                            break
                    if len(operands) < pattern.ARITY:
                        continue
                    done = pattern.lower_join(g, node, operands[0], operands[1],
                                              f"{pattern.KIND}{len(self.layers)}")
                    after = self.record(done, tuple(self.producer[operands[k].tensor]
                                                    for k in range(pattern.ARITY)))
                    del joins[node.name]
                if done.output is not None:
                    output = done.output
                if after is not None:
                    ready.append(after)
        if joins:
            waiting = next(n for n in g.model.graph.node if n.name in joins)
            raise g.err(waiting, "only one of its operands comes from the input's codes; "
                                 "qflow lowers graphs whose every branch starts there")
        if output is None:
            raise g.err(None, "the graph ends before a layer with weights")
        return output

    def record(self, done: Lowered, reads: tuple[str, ...]) -> Stream | None:
        """Append the lowered layer (and a MaxPool moved onto its codes) with what it reads
        and what lowering found about its exactness; the stream after it."""
        lname = done.layer.name
        self.layers.append(done.layer)
        self.inputs[lname] = reads
        if not done.exact or done.requant_steps:
            self.inexact.append(lname)
        if isinstance(done.layer.activation, Requant) and done.stream is not None:
            # where verify finds the float graph's codes of this layer, to measure the
            # requantization's difference from them; proven_exact: equal to the float
            # graph's quantizer on every reachable accumulator (flow.lower.requant)
            q = done.stream.q
            self.requantized[lname] = {
                "tensor": done.stream.tensor, "power_of_two": done.requant_exact,
                "proven_exact": done.requant_steps == 0,
                "max_step_difference": done.requant_steps, "boundary_shift": done.requant_moved,
                "float_product_exact": done.exact,
                "scale": float(np.asarray(q.scale).reshape(-1)[0]),
                "zero_point": float(np.asarray(q.zero_point).reshape(-1)[0])}
        if done.kept_thresholds is not None:
            self.kept[lname] = done.kept_thresholds
        after = done.stream
        if done.pool is not None and after is not None:  # a MaxPool moved onto codes
            moved, after = pool.pool_layer(self.g, done.pool, after,
                                           f"{pool.KIND}{len(self.layers)}")
            self.layers.append(moved)
            self.inputs[moved.name] = (lname,)
            lname = moved.name
        if after is not None:
            self.producer[after.tensor] = lname
        if done.stream is not None:
            self.tensors[done.layer.name] = done.stream.tensor
        return after


def dequantized_output(stream: Stream, channels: int) -> OutputStage:
    """The graph ends in the last layer's activation quantizer (an output Q/DQ pair): its
    codes leave as the quantizer's float values, (code - zero point) * scale, which float32
    computes exactly as the quantizer does."""
    q = stream.q
    return OutputStage(acc_offset=np.full(channels, int(np.asarray(q.zero_point).reshape(-1)[0])),
                       acc_scale=np.full(channels, float(np.asarray(q.scale).reshape(-1)[0])),
                       ops=[], shape=(channels,))


ACTIVATION_FORMS = ("thresholds", "requant", "auto")
DEFAULT_ACTIVATION_FORM = "auto"  # config lower.activation and `qflow compile --activation`
DEFAULT_ROUNDING = "half_even"  # config lower.rounding and `qflow compile --rounding`


def lower(path: Path, name: str | None = None, activation: str = DEFAULT_ACTIVATION_FORM,
          rounding: str = DEFAULT_ROUNDING) -> Model:
    """QONNX file -> integer IR (validated). `activation`: hidden layers' activations as
    thresholds (exact for any monotone tail), fixed-point requantizations (an affine tail;
    an error where impossible; listed inexact where it differs from the float graph), or
    auto, the default (requantization from REQUANT_MIN_BITS-bit outputs where the tail
    allows and it is proven equal to the thresholds, thresholds elsewhere). `rounding`: the
    requantizations' (flow.ir.Requant): QONNX's single rounding half to even, or TFLite's
    double rounding for a user who asks for TFLite's integer semantics."""
    if activation not in ACTIVATION_FORMS:
        raise ValueError(f"activation form {activation!r} is not one of "
                         f"{', '.join(ACTIVATION_FORMS)}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"requantization rounding {rounding!r} is not one of "
                         f"{', '.join(ROUNDINGS)}")
    path = Path(path)
    graph, frontend = frontends.load(path)
    graph, rewritten = run_passes(graph)
    g = Graph(graph, str(path), activation, rounding)
    inp, stream = input_stage(g)
    walk = Walk(g)
    output = walk.run(stream)
    model = Model(name=name or path.stem.replace(".qonnx", ""), input=inp, layers=walk.layers,
                  output=output, source=str(path), inputs=walk.inputs,
                  meta={"inexact_layers": walk.inexact, "frontend": frontend.NAME,
                        "passes": rewritten})
    if walk.requantized:
        model.meta["requantized_layers"] = walk.requantized
    if walk.kept:
        model.meta["kept_thresholds"] = walk.kept
    if not model.is_chain:  # where verify finds each activation's codes in the float graph
        model.meta["activation_tensors"] = walk.tensors
    model.validate(str(path))
    return model
