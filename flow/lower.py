"""Lower a QONNX MLP (Brevitas export or any QONNX file of that shape) to the integer IR.

The graph is read as a chain: input preprocessing and quantizer, then per layer a
MatMul/Gemm with quantized weights, a tail of elementwise float ops (bias, batch norm,
scales) and, for hidden layers, the activation quantizer. Each hidden layer's tail and
quantizer collapse into per-channel integer thresholds, computed by running the graph's own
tail nodes in qonnx's executor: threshold j of channel o is the smallest integer
accumulator whose quantized output reaches level j (binary search over the accumulator's
worst-case range; the tail is monotone in the accumulator because every op in it is an
affine map with a fixed sign, a monotone rounding or a clip). Where the range is small
enough, every accumulator value is evaluated as well and must agree with the thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from flow.datatypes import DataType, dtype, quant_dtype, smallest_int_type
from flow.ir import (
    DenseLayer,
    ElementwiseOp,
    InputStage,
    Model,
    OutputStage,
    Thresholds,
    accumulator_bounds,
    dtype_range,
)

log = logging.getLogger("qflow.lower")

QUANT_OPS = ("Quant", "BipolarQuant")
ARITH = {"Mul": "mul", "Div": "div", "Add": "add", "Sub": "sub"}
TAIL_OPS = {"Mul", "Div", "Add", "Sub", "BatchNormalization", "Relu", "Identity", "Clip"}
SHAPE_OPS = {"Reshape", "Flatten", "Identity", "Dropout"}
ENUMERATE_LIMIT = 1 << 22  # accumulator values x channels evaluated exhaustively


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
        rounding = {"ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil,
                    "FLOOR": np.floor}[self.rounding]
        return rounding(y).astype(np.int64)


class Graph:
    """Producer/consumer maps and constants of an ONNX graph."""

    def __init__(self, model: onnx.ModelProto, path: str) -> None:
        self.model, self.path = model, path
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i)
                                              for i in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in g.node:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
                continue
            for o in n.output:
                self.producer[o] = n
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)

    def err(self, node: onnx.NodeProto | None, msg: str) -> LoweringError:
        where = f"node {node.name or '(unnamed)'} ({node.op_type})" if node is not None else "graph"
        return LoweringError(f"{self.path}: {where}: {msg}")

    def attr(self, node: onnx.NodeProto, name: str, default: object = None) -> object:
        for a in node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def const(self, name: str, node: onnx.NodeProto) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        raise self.err(node, f"input {name!r} must be a constant")

    def is_const(self, name: str) -> bool:
        if name in self.consts or name == "":
            return True
        p = self.producer.get(name)
        return p is not None and all(self.is_const(i) for i in p.input)

    def quant_params(self, node: onnx.NodeProto) -> QuantParams:
        if node.op_type == "BipolarQuant":
            return QuantParams(True, self.const(node.input[1], node).astype(np.float32),
                               np.zeros(1, np.float32), 1, True, False, "ROUND")
        scale = self.const(node.input[1], node).astype(np.float32)
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

    def weight(self, name: str, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray, QuantParams]:
        """Integer weights [in, out] as MatMul sees them, their per-output scale, and params."""
        transposes = 0
        p = self.producer.get(name)
        while p is not None and p.op_type in ("Transpose", "Identity"):
            transposes += p.op_type == "Transpose"
            name, p = p.input[0], self.producer.get(p.input[0])
        if p is None or p.op_type not in QUANT_OPS:
            raise self.err(node, "weights must come from a Quant or BipolarQuant node "
                                 "(qflow lowers quantized weights only)")
        q = self.quant_params(p)
        w = self.const(p.input[0], p).astype(np.float32)
        if w.ndim != 2:
            raise self.err(p, f"weights of rank {w.ndim}; dense layers need rank 2")
        codes = q.codes(w) - np.broadcast_to(q.zero_point, w.shape).astype(np.int64)
        scale = np.broadcast_to(q.scale, w.shape)
        if transposes % 2:
            codes, scale = codes.T, scale.T
        return codes, scale, q


def _load(path: Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise LoweringError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises DecodeError and friends
        raise LoweringError(f"{path}: not an ONNX file or truncated ({type(e).__name__}: {e})") from e
    if not model.graph.node:
        raise LoweringError(f"{path}: the graph has no nodes (not a QONNX model?)")
    if not any(n.op_type in QUANT_OPS for n in model.graph.node):
        raise LoweringError(f"{path}: no Quant/BipolarQuant node: not a QONNX quantized model")
    return model


def _input_shape(g: Graph) -> tuple[str, tuple[int, ...]]:
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
    return inputs[0].name, tuple(shape[1:])


def _next(g: Graph, tensor: str) -> onnx.NodeProto | None:
    users = g.consumers.get(tensor, [])
    if len(users) > 1:
        raise g.err(users[1], f"tensor {tensor!r} feeds {len(users)} nodes; qflow lowers chains")
    return users[0] if users else None


def _data_input(g: Graph, node: onnx.NodeProto, tensor: str) -> None:
    others = [i for i in node.input if i != tensor]
    for i in others:
        if not g.is_const(i):
            raise g.err(node, f"second operand {i!r} is not constant")


def _elementwise(g: Graph, node: onnx.NodeProto, tensor: str) -> list[ElementwiseOp]:
    """A tail/preprocessing node as float32 ops on the running tensor."""
    if node.op_type in ARITH:
        _data_input(g, node, tensor)
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        value = g.const(other, node).astype(np.float32)
        if node.input[0] != tensor and node.op_type in ("Sub", "Div"):
            raise g.err(node, "constant on the left of Sub/Div is not supported")
        return [ElementwiseOp(ARITH[node.op_type], value.reshape(-1) if value.ndim > 1 else value)]
    if node.op_type == "BatchNormalization":
        gamma, beta, mean, var = (g.const(i, node).astype(np.float32) for i in node.input[1:5])
        eps = np.float32(g.attr(node, "epsilon", 1e-5))
        # onnxruntime's inference form: x * (gamma / sqrt(var + eps)) + (beta - mean * that)
        scale = (np.float32(1) / np.sqrt(var + eps)).astype(np.float32) * gamma
        return [ElementwiseOp("mul", scale), ElementwiseOp("add", beta - mean * scale)]
    if node.op_type in ("Identity", "Dropout", "Reshape", "Flatten"):
        return []
    raise g.err(node, "not supported here as an elementwise op")


def _run_tail(g: Graph, nodes: list[onnx.NodeProto], start: str, values: np.ndarray) -> np.ndarray:
    """The graph's own tail nodes on `values` [rows, C], run by qonnx's executor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    out = nodes[-1].output[0]
    names = {i for n in nodes for i in n.input if i in g.consts}
    inits = [numpy_helper.from_array(np.asarray(g.consts[k]), k) for k in sorted(names)]
    graph = helper.make_graph(
        list(nodes), "tail",
        [helper.make_tensor_value_info(start, onnx.TensorProto.FLOAT, list(values.shape))],
        [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, list(values.shape))], inits)
    # every tail op is elementwise: each intermediate has the input's shape
    graph.value_info.extend(helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT,
                                                          list(values.shape))
                            for n in nodes[:-1] for o in n.output)
    sub = helper.make_model(graph, opset_imports=list(g.model.opset_import))
    sub.ir_version = min(g.model.ir_version, 10)
    wrapped = ModelWrapper(sub)
    return execute_onnx(wrapped, {start: values.astype(np.float32)})[out]


def _thresholds(g: Graph, name: str, nodes: list[onnx.NodeProto], start: str,
                q: QuantParams, real: Callable[[np.ndarray], np.ndarray], w: np.ndarray,
                x_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds [C, K] on the accumulator, and the per-channel sign: -1 where the tail
    decreases with the accumulator, so that the caller negates those weight rows."""
    qmin, qmax = q.code_range
    levels = np.arange(qmin + 1, qmax + 1) if not q.bipolar else np.array([1])
    channels = w.shape[0]

    def code(acc: np.ndarray, sign: np.ndarray) -> np.ndarray:  # acc [rows, C] on signed weights
        return q.codes(_run_tail(g, nodes, start, real(acc * sign)))

    lo, hi = accumulator_bounds(w, *x_range)
    ends = code(np.stack([lo, hi]), np.ones(channels, np.int64))
    sign = np.where(ends[0] > ends[1], -1, 1)
    lo, hi = accumulator_bounds(w * sign[:, None], *x_range)
    k = len(levels)
    left = np.repeat(lo[:, None], k, axis=1)
    right = np.repeat(hi[:, None] + 1, k, axis=1)  # hi + 1: the level is never reached
    while np.any(left < right):
        mid = (left + right) // 2
        probe = np.minimum(mid, hi[:, None])
        reached = (levels[None, :] <= code(probe.T, sign).T) | (mid > hi[:, None])
        open_ = left < right
        right = np.where(reached & open_, mid, right)
        left = np.where(~reached & open_, mid + 1, left)
    span = int((hi - lo).max()) + 1
    if span * channels <= ENUMERATE_LIMIT:  # check every reachable value
        a = lo[None, :] + np.arange(span)[:, None]  # [span, C]
        valid = a <= hi[None, :]
        a = np.minimum(a, hi[None, :])
        want = code(a, sign)
        count = (a[:, :, None] >= left[None, :, :]).sum(axis=2)
        got = np.where(count > 0, 1, -1) if q.bipolar else qmin + count
        bad = np.argwhere((want != got) & valid)
        if len(bad):
            r, c = bad[0]
            raise g.err(nodes[-1], f"layer {name}: thresholds disagree with the graph at "
                                   f"channel {c}, accumulator {a[r, c]}: the tail is not "
                                   "monotone in the accumulator")
    return left, sign


def lower(path: Path, name: str | None = None) -> Model:
    """QONNX file -> integer IR (validated)."""
    path = Path(path)
    g = Graph(_load(path), str(path))
    inp_name, shape = _input_shape(g)
    tensor = inp_name
    pre: list[ElementwiseOp] = []
    node = _next(g, tensor)
    # ---- input stage: elementwise preprocessing up to the first quantizer
    while node is not None and node.op_type not in QUANT_OPS:
        if node.op_type not in SHAPE_OPS | set(ARITH):
            raise g.err(node, "op not supported before the input quantizer")
        pre += _elementwise(g, node, tensor)
        tensor, node = node.output[0], _next(g, node.output[0])
    if node is None:
        raise g.err(None, "no input quantizer found on the path from the input")
    q_in = g.quant_params(node)
    if q_in.scale.size != 1 or q_in.zero_point.size != 1:
        raise g.err(node, "the input quantizer needs one scale and zero point (per tensor)")
    inp = InputStage(shape=shape, preprocess=pre, kind="bipolar" if q_in.bipolar else "int",
                     scale=float(q_in.scale.reshape(-1)[0]),
                     zero_point=float(q_in.zero_point.reshape(-1)[0]), bitwidth=q_in.bitwidth,
                     signed=q_in.signed, narrow=q_in.narrow, out_dtype=q_in.dtype)
    tensor = node.output[0]
    x_q, x_dtype = q_in, q_in.dtype
    layers: list[DenseLayer] = []
    inexact: list[str] = []
    output: OutputStage | None = None
    while output is None:
        node = _next(g, tensor)
        while node is not None and node.op_type in SHAPE_OPS:
            tensor, node = node.output[0], _next(g, node.output[0])
        if node is None or node.op_type not in ("MatMul", "Gemm"):
            raise g.err(node, "expected a MatMul or Gemm (dense layer) here" if node is not None
                        else "the graph ends before a dense layer")
        if node.input[0] != tensor:
            raise g.err(node, "the activation must be the first MatMul/Gemm operand")
        w, w_scale, w_q = g.weight(node.input[1], node)  # [in, out] after transposes
        if node.op_type == "Gemm":
            if g.attr(node, "transA", 0) or g.attr(node, "alpha", 1.0) != 1.0 or \
                    g.attr(node, "beta", 1.0) != 1.0:
                raise g.err(node, "Gemm with transA, alpha or beta != 1 is not supported")
            if g.attr(node, "transB", 0):
                w, w_scale = w.T, w_scale.T
        w = w.T.astype(np.int64)  # [out, in]
        w_scale = w_scale.T
        n_out, n_in = w.shape
        if np.any(w_scale != w_scale[:, :1]):
            raise g.err(node, "weight scale varies along the input axis; per-output-channel "
                              "or per-tensor scales only")
        lname = f"dense{len(layers)}"
        tail: list[onnx.NodeProto] = []
        start = node.output[0]
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            tail.append(helper.make_node("Add", [start + "__acc", node.input[2]], [start],
                                         name=f"{node.name}_bias"))
            start = start + "__acc"
        x_zp = int(np.asarray(x_q.zero_point).reshape(-1)[0])
        s = (np.float64(np.asarray(x_q.scale).reshape(-1)[0]) * w_scale[:, 0].astype(np.float64))
        rowsum = w.sum(axis=1)

        def real(acc: np.ndarray, s: np.ndarray = s, rowsum: np.ndarray = rowsum,
                 zp: int = x_zp) -> np.ndarray:
            """MatMul output for accumulator values (the float graph's exact product)."""
            return ((acc - zp * rowsum) * s).astype(np.float32)

        exact = _is_exact(s, w, x_q, n_in)
        if not exact:
            inexact.append(lname)
            log.warning("%s: %s: float32 MatMul of the QONNX graph is not exact (scales not "
                        "powers of two or sums past 2^24); rare samples may round differently "
                        "in the float executor", path, node.name)
        x_lo, x_hi = dtype_range(x_dtype)
        tensor = node.output[0]
        nxt = _next(g, tensor)
        while nxt is not None and nxt.op_type in TAIL_OPS:
            _data_input(g, nxt, tensor)
            tail.append(nxt)
            tensor, nxt = nxt.output[0], _next(g, nxt.output[0])
        w_dtype = dtype("BIPOLAR") if w_q.bipolar else (
            w_q.dtype if np.all(w_q.zero_point == 0) else smallest_int_type(int(w.min()), int(w.max())))
        if nxt is not None and nxt.op_type in QUANT_OPS:
            q = g.quant_params(nxt)
            if q.scale.size != 1 or q.zero_point.size != 1:
                raise g.err(nxt, "activation quantizers need one scale and zero point")
            t, sign = _thresholds(g, lname, tail + [nxt], start, q, real, w, (x_lo, x_hi))
            w = w * sign[:, None]
            lo, hi = accumulator_bounds(w, x_lo, x_hi)
            acc_min, acc_max = int(lo.min()), int(hi.max())
            if not w_dtype.contains(int(w.min()), int(w.max())):
                w_dtype = smallest_int_type(int(w.min()), int(w.max()))
            qmin, _ = q.code_range
            act = Thresholds(values=np.clip(t, acc_min, acc_max + 1),
                             base=-1 if q.bipolar else qmin, step=2 if q.bipolar else 1,
                             out_dtype=q.dtype)
            tensor, x_q, x_dtype = nxt.output[0], q, q.dtype
        elif nxt is None:
            lo, hi = accumulator_bounds(w, x_lo, x_hi)
            acc_min, acc_max = int(lo.min()), int(hi.max())
            act = None
            ops = [op for n in tail for op in _elementwise(g, n, n.input[0])]
            output = OutputStage(acc_offset=x_zp * rowsum, acc_scale=s, ops=ops, shape=(n_out,))
        else:
            raise g.err(nxt, "op not supported after a dense layer (expected elementwise ops "
                             "then Quant/BipolarQuant, or the graph output)")
        layers.append(DenseLayer(
            name=lname, source=node.name, in_features=n_in, out_features=n_out,
            input_dtype=layers[-1].out_dtype if layers else inp.out_dtype, weight_dtype=w_dtype,
            weights=w.astype(np.int8 if w_dtype.bits <= 8 else np.int32),
            acc_min=acc_min, acc_max=acc_max, activation=act))
    model = Model(name=name or path.stem.replace(".qonnx", ""), input=inp, layers=layers,
                  output=output, source=str(path), meta={"inexact_layers": inexact})
    model.validate(str(path))
    return model


def _is_exact(s: np.ndarray, w: np.ndarray, x_q: QuantParams, n_in: int) -> bool:
    """True when the float32 MatMul computes (acc - zp * rowsum) * s without rounding:
    every scale a power of two and every partial sum below 2^24 in units of the scale."""
    po2 = np.all(np.frexp(s)[0] == 0.5)
    lo, hi = x_q.code_range
    zp = int(np.asarray(x_q.zero_point).reshape(-1)[0])
    bound = n_in * int(np.abs(w).max(initial=0)) * max(abs(lo - zp), abs(hi - zp))
    return bool(po2) and bound < 2**24
