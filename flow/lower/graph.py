"""Reading a QONNX graph: producers and consumers, constants, quantizer parameters, the
elementwise ops that a chain of layers passes through, and errors that name the node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from flow.datatypes import DataType, dtype, quant_dtype
from flow.ir import MAX_TENSOR_VALUES, ElementwiseOp

QUANT_OPS = ("Quant", "BipolarQuant")
ARITH = {"Mul": "mul", "Div": "div", "Add": "add", "Sub": "sub"}
# Identity and inference Dropout are gone by matching (flow.lower.passes.remove_identities)
TAIL_OPS = {"Mul", "Div", "Add", "Sub", "BatchNormalization", "Relu", "Clip"}
SHAPE_OPS = {"Reshape", "Flatten"}
LAYOUT_OPS = SHAPE_OPS | {"Transpose"}  # between layers: they move values, never change them


class LoweringError(ValueError):
    """The model cannot be lowered; the message names the file, node and op."""


@dataclass
class QuantParams:
    """A Quant/BipolarQuant node's parameters (scalar or per-channel scale)."""

    bipolar: bool
    scale: np.ndarray
    zero_point: np.ndarray
    bitwidth: int
    signed: bool
    narrow: bool
    rounding: str

    @property
    def code_range(self) -> tuple[int, int]:
        if self.bipolar:
            return -1, 1
        if self.signed:
            return -(2 ** (self.bitwidth - 1)) + int(self.narrow), 2 ** (self.bitwidth - 1) - 1
        return 0, 2**self.bitwidth - 1 - int(self.narrow)

    @property
    def dtype(self) -> DataType:
        return dtype("BIPOLAR") if self.bipolar else quant_dtype(self.bitwidth, self.signed,
                                                                   self.narrow)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """Integer codes of float inputs, in qonnx's op order (float32)."""
        x = np.asarray(x, np.float32)
        if self.bipolar:
            return np.where(x >= 0, 1, -1).astype(np.int64)
        y = x / self.scale.astype(np.float32) + self.zero_point.astype(np.float32)
        lo, hi = self.code_range
        y = np.clip(y, np.float32(lo), np.float32(hi))
        roundings: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor}
        rounding = roundings[self.rounding]
        return rounding(y).astype(np.int64)


@dataclass
class Stream:
    """Where lowering stands between layers: the graph tensor that carries the codes, the
    quantizer that made them, their IR type, and for each element of that tensor (batch
    excluded) its position in the IR's flat frame (`follow_layout`)."""

    tensor: str
    q: QuantParams
    dtype: DataType
    index: np.ndarray


def frame_index(shape: tuple[int, int, int]) -> np.ndarray:
    """The layout index of a (C, H, W) graph tensor held as an IR frame in (H, W, C) order."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1)


class Graph:
    """Producer/consumer maps and constants of an ONNX graph."""

    def __init__(self, model: onnx.ModelProto, path: str, activation_form: str,
                 requant_rounding: str = "half_even") -> None:
        self.model, self.path = model, path
        # how hidden layers' activations are lowered: thresholds | requant | auto
        self.activation_form = activation_form
        # a requantization's rounding (flow.ir.Requant): half_even | tflite
        self.requant_rounding = requant_rounding
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i)
                                              for i in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            if n.op_type == "Constant":  # one holding a tensor is an initializer by now
                raise self.err(n, "a Constant must hold one tensor (its value attribute)")
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def err(self, node: onnx.NodeProto | None, msg: str) -> LoweringError:
        where = f"node {node.name or '(unnamed)'} ({node.op_type})" if node is not None else "graph"
        return LoweringError(f"{self.path}: {where}: {msg}")

    def check_shape(self, node: onnx.NodeProto | None, what: str, shape: tuple[int, ...]
                    ) -> tuple[int, ...]:
        """A tensor's shape (batch excluded) before anything of its size is made: every
        dimension at least 1 and at most MAX_TENSOR_VALUES values in all."""
        if any(d < 1 for d in shape):
            raise self.err(node, f"{what} of shape {shape}: every dimension must be 1 or more")
        values = int(np.prod(shape, dtype=object))
        if values > MAX_TENSOR_VALUES:
            raise self.err(node, f"{what} of shape {shape}: {values} values per sample, more "
                                 f"than qflow's limit of {MAX_TENSOR_VALUES} per tensor")
        return shape

    def attr(self, node: onnx.NodeProto, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def const(self, name: str, node: onnx.NodeProto) -> np.ndarray:
        if name not in self.consts and name in self.producer and self.is_const(name):
            self.consts[name] = self.fold(name)
        if name in self.consts:
            return self.consts[name]
        raise self.err(node, f"input {name!r} must be a constant")

    def fold(self, name: str) -> np.ndarray:
        """A tensor computed from constants only (a quantized bias: Quant of an
        initializer), evaluated by qonnx's executor exactly as the graph computes it. On
        demand rather than a pass folding every constant subgraph: a quantized weight is
        one too, and its Quant must stay a node (`weight` reads its codes and scale); which
        constant is a weight only the pattern that takes it knows."""
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes

        needed, todo = set(), [name]
        while todo:
            producer = self.producer.get(todo.pop())
            if producer is not None and id(producer) not in needed:
                needed.add(id(producer))
                todo += [i for i in producer.input if i and i not in self.consts]
        nodes = [n for n in self.model.graph.node if id(n) in needed]  # graph order
        inits = sorted({i for n in nodes for i in n.input if i in self.consts})
        graph = helper.make_graph(
            nodes, "constant", [], [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)],
            [numpy_helper.from_array(np.asarray(self.consts[k]), k) for k in inits])
        sub = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        sub.ir_version = min(self.model.ir_version, 10)
        return np.asarray(execute_onnx(ModelWrapper(sub).transform(InferShapes()), {})[name])

    def is_const(self, name: str) -> bool:
        if name in self.consts or name == "":
            return True
        p = self.producer.get(name)
        return p is not None and all(self.is_const(i) for i in p.input)

    def quant_params(self, node: onnx.NodeProto) -> QuantParams:
        if len(node.input) < (2 if node.op_type == "BipolarQuant" else 4):
            raise self.err(node, f"{len(node.input)} inputs; {node.op_type} takes x, scale"
                                 + ("" if node.op_type == "BipolarQuant" else ", zero point "
                                    "and bit width"))
        scale = self.const(node.input[1], node).astype(np.float32)
        if scale.size == 0 or not np.all(np.isfinite(scale)) or np.any(scale == 0):
            raise self.err(node, f"scale {scale.reshape(-1)[:4]} must be finite and nonzero "
                                 "(codes are x / scale)")
        if node.op_type == "BipolarQuant":
            return QuantParams(True, scale, np.zeros(1, np.float32), 1, True, False, "ROUND")
        zp = self.const(node.input[2], node).astype(np.float32)
        bits = self.const(node.input[3], node)
        if bits.size != 1 or float(bits) != int(bits) or not 1 <= int(bits) <= 32:
            raise self.err(node, f"bit width {bits} must be one integer in 1..32")
        signed, narrow = bool(self.attr(node, "signed", 1)), bool(self.attr(node, "narrow", 0))
        rounding = str(self.attr(node, "rounding_mode", "ROUND")).upper()
        if rounding not in ("ROUND", "HALF_EVEN", "CEIL", "FLOOR"):
            raise self.err(node, f"rounding mode {rounding} is not supported")
        if np.any(zp != np.round(zp)):
            raise self.err(node, "zero point must be an integer")
        if int(bits) == 1 and signed:  # qonnx executes 1-bit signed Quant as bipolar
            return QuantParams(True, scale, np.zeros(1, np.float32), 1, True, False, rounding)
        return QuantParams(False, scale, zp, int(bits), signed, narrow, rounding)

    def weight(self, name: str, node: onnx.NodeProto, rank: int
               ) -> tuple[np.ndarray, np.ndarray, QuantParams]:
        """Integer weights of `rank` as the op sees them (rank 2: [in, out] after transposes),
        zero point removed, their scale broadcast to the same shape, and the quantizer."""
        transposes = 0
        p = self.producer.get(name)
        while p is not None and p.op_type == "Transpose":
            transposes += 1
            name, p = p.input[0], self.producer.get(p.input[0])
        if p is None or p.op_type not in QUANT_OPS:
            raise self.err(node, "weights must come from a Quant or BipolarQuant node "
                                 "(qflow lowers quantized weights only)")
        q = self.quant_params(p)
        w = self.const(p.input[0], p).astype(np.float32)
        if w.ndim != rank or (transposes and rank != 2):
            raise self.err(p, f"weights of rank {w.ndim}{' behind a Transpose' * bool(transposes)}"
                              f"; {node.op_type} needs rank {rank}")
        codes = q.codes(w) - np.broadcast_to(q.zero_point, w.shape).astype(np.int64)
        scale = np.broadcast_to(q.scale, w.shape)
        if transposes % 2:
            codes, scale = codes.T, scale.T
        return codes, scale, q


def input_shape(g: Graph) -> tuple[str, tuple[int, ...]]:
    inputs = [i for i in g.model.graph.input if i.name not in g.consts]
    if len(inputs) != 1 or len(g.model.graph.output) != 1:
        raise g.err(None, f"{len(inputs)} inputs and {len(g.model.graph.output)} outputs; "
                          "qflow lowers single-input, single-output models")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = []
    for k, d in enumerate(dims):
        if d.HasField("dim_value"):
            shape.append(d.dim_value)
        elif k == 0:
            shape.append(1)  # a symbolic batch dimension is fine
        else:
            raise g.err(None, f"input {inputs[0].name!r} has dynamic dimension {k} "
                              f"({d.dim_param or '?'}); qflow needs static shapes")
    if not shape or shape[0] != 1:
        raise g.err(None, f"input {inputs[0].name!r} shape {shape}: expected batch 1 first")
    return inputs[0].name, g.check_shape(None, f"input {inputs[0].name!r}", tuple(shape[1:]))


def next_node(g: Graph, tensor: str) -> onnx.NodeProto | None:
    users = g.consumers.get(tensor, [])
    if len(users) > 1:
        raise g.err(users[1], f"tensor {tensor!r} feeds {len(users)} nodes; qflow lowers chains")
    return users[0] if users else None


def data_input(g: Graph, node: onnx.NodeProto, tensor: str) -> None:
    others = [i for i in node.input if i != tensor]
    for i in others:
        if not g.is_const(i):
            raise g.err(node, f"second operand {i!r} is not constant")


def elementwise(g: Graph, node: onnx.NodeProto, tensor: str, shape: tuple[int, ...]
                ) -> list[ElementwiseOp]:
    """A tail/preprocessing node as float32 ops on the running tensor, which the IR holds
    flat: the graph's tensor of `shape` (batch excluded), in the graph's order. Constants
    that are not scalars become one value per element of that flat vector."""

    def flat(value: np.ndarray, channel_axis: bool = False) -> np.ndarray:
        if value.size == 1:
            return value.reshape(-1) if value.ndim > 1 else value
        if channel_axis:  # BatchNormalization's [C] runs along axis 1 of (N, C, ...)
            value = value.reshape(value.shape + (1,) * (len(shape) - 1))
        try:
            return np.broadcast_to(value, (1, *shape)).reshape(-1)
        except ValueError:
            raise g.err(node, f"constant of shape {value.shape} does not broadcast to the "
                              f"tensor's shape {(1, *shape)}") from None

    if node.op_type in ARITH:
        data_input(g, node, tensor)
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        value = g.const(other, node).astype(np.float32)
        if node.input[0] != tensor and node.op_type in ("Sub", "Div"):
            raise g.err(node, "constant on the left of Sub/Div is not supported")
        return [ElementwiseOp(ARITH[node.op_type], flat(value))]
    if node.op_type == "BatchNormalization":
        gamma, beta, mean, var = (g.const(i, node).astype(np.float32) for i in node.input[1:5])
        eps = np.float32(g.attr(node, "epsilon", 1e-5))
        # onnxruntime's inference form: x * (gamma / sqrt(var + eps)) + (beta - mean * that)
        scale = (np.float32(1) / np.sqrt(var + eps)).astype(np.float32) * gamma
        return [ElementwiseOp("mul", flat(scale, True)),
                ElementwiseOp("add", flat(beta - mean * scale, True))]
    if node.op_type in SHAPE_OPS:
        return []
    raise g.err(node, "not supported here as an elementwise op")


def follow_layout(g: Graph, node: onnx.NodeProto, index: np.ndarray) -> np.ndarray:
    """`index` holds, for each element of the graph's tensor (batch excluded), its position in
    the IR's flat frame; the same after a layout op (Reshape, Flatten, Transpose: they move
    elements, row-major as ONNX defines them)."""
    if node.op_type == "Transpose":
        perm = list(g.attr(node, "perm", range(index.ndim, -1, -1)))  # default: reversed
        if len(perm) != index.ndim + 1 or perm[0] != 0:
            raise g.err(node, f"transpose {perm} moves the batch axis")
        return index.transpose([p - 1 for p in perm[1:]])
    if node.op_type == "Flatten":
        axis = g.attr(node, "axis", 1)
        axis = axis + index.ndim + 1 if axis < 0 else axis
        if int(np.prod((1, *index.shape)[:axis])) != 1:
            raise g.err(node, f"flatten at axis {axis} merges the batch axis")
        return index.reshape(-1)
    if node.op_type == "Reshape":
        target = [int(d) for d in g.const(node.input[1], node)]
        allowzero = g.attr(node, "allowzero", 0)
        full = (1, *index.shape)
        target = [full[k] if d == 0 and not allowzero else d for k, d in enumerate(target)]
        shape = np.empty(full, np.int8).reshape(target).shape if -1 in target else tuple(target)
        if int(np.prod(shape)) != index.size or not shape or shape[0] != 1:
            raise g.err(node, f"reshape of {full} to {tuple(target)} must keep the batch of 1 "
                              "first")
        return index.reshape(shape[1:])
    raise g.err(node, "not a layout op")
