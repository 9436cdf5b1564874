"""The ONNX QDQ frontend: models quantized by onnxruntime (`quantize_static`, QDQ format),
or any graph of QuantizeLinear / DequantizeLinear nodes around float ops, turned into the
normalized QONNX that lowering matches. Its reference is onnxruntime running the file as
the user gave it (flow.reference).

The conversion (written here rather than qonnx's QCDQToQuant, which in qonnx 1.0 rescales
per-channel weights before reshaping their scale and fails):
- an activation's QuantizeLinear -> DequantizeLinear pair with one scale and zero point
  becomes one Quant node (bit width and sign from the zero point's type, rounding half to
  even, saturating: QuantizeLinear's own arithmetic);
- a DequantizeLinear of 8-bit (or narrower) constant weights becomes a Quant of their
  float values, per channel along its axis, whose codes are the stored integers;
- a DequantizeLinear of an int32 bias becomes the float constant it computes;
- a Quant that re-quantizes codes of the same grid (onnxruntime's pair after a MaxPool,
  Reshape or Flatten, which only pick or move codes) is the identity and is removed.
Anything else (scales computed at run time, block or per-axis activation quantization,
a QuantizeLinear whose codes leave the graph) is refused, naming the node.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from flow.ir import MAX_TENSOR_VALUES
from flow.lower.graph import LoweringError

NAME = "qdq"
REFERENCES = ("onnxruntime", "qonnx_executor")  # the latter on the QONNX form
SOURCE_FILE = "model.qdq.onnx"  # where a compiled build keeps the file as given
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

# zero point type -> (bit width, signed)
CODE_TYPES: dict[int, tuple[int, bool]] = {
    TensorProto.UINT8: (8, False), TensorProto.INT8: (8, True),
    TensorProto.UINT16: (16, False), TensorProto.INT16: (16, True),
    TensorProto.UINT4: (4, False), TensorProto.INT4: (4, True),
}
# ops that pass codes on without changing their grid: a Quant after them equal to the one
# before is the identity
FOLDABLE = ("ConstantOfShape", "Cast")  # computed from constants here (`_Rewriter.fold`)
GRID_PRESERVING = ("MaxPool", "Reshape", "Flatten", "Transpose", "Identity", "Squeeze",
                   "Unsqueeze")


def accepts(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


class _Rewriter:
    def __init__(self, model: onnx.ModelProto, path: Path):
        self.model, self.path = model, path
        self.graph = model.graph
        self.consts = {t.name: t for t in self.graph.initializer}
        self.folded: set[str] = set()  # nodes computed here from constants (`fold`)
        for n in self.graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.consts[n.output[0]] = n.attribute[0].t
            elif n.op_type in FOLDABLE and n.input and all(i in self.consts for i in n.input):
                self.consts[n.output[0]] = numpy_helper.from_array(self.fold(n), n.output[0])
                self.folded.add(n.output[0])
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.outputs = {o.name for o in self.graph.output}
        self.new_inits: list[onnx.TensorProto] = []

    def fold(self, node: onnx.NodeProto) -> np.ndarray:
        """A constant subgraph's node (PyTorch's export makes a bias zero point with
        ConstantOfShape and Cast), computed, its size bounded before anything is allocated."""
        x = numpy_helper.to_array(self.consts[node.input[0]])
        if node.op_type == "ConstantOfShape":
            shape = [int(d) for d in x.reshape(-1)]
            if any(d < 0 for d in shape) or math.prod(shape) > MAX_TENSOR_VALUES:
                raise self.err(node, f"a constant of shape {shape}: negative or larger than "
                                     f"{MAX_TENSOR_VALUES} values")
            value = next((numpy_helper.to_array(a.t) for a in node.attribute
                          if a.name == "value"), np.zeros(1, np.float32))
            if value.size != 1:
                raise self.err(node, f"its value holds {value.size} elements, not one")
            return np.full(shape, value.reshape(-1)[0], value.dtype)
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        try:
            return x.astype(helper.tensor_dtype_to_np_dtype(to))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as e:
            raise self.err(node, f"casts to an unknown type {to!r}") from e

    def err(self, node: onnx.NodeProto, msg: str) -> LoweringError:
        return LoweringError(f"{self.path}: node {node.name or node.op_type!r} "
                             f"({node.op_type}, QDQ format): {msg}")

    def const(self, name: str, node: onnx.NodeProto, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.err(node, f"its {what} {name!r} is computed at run time; qflow needs "
                                 "constant scales and zero points")
        return numpy_helper.to_array(self.consts[name])

    def params(self, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray, int, bool, int]:
        """(scale float32, zero point int64, bit width, signed, axis) of a Q or DQ node."""
        if any(a.name == "block_size" and a.i for a in node.attribute):
            raise self.err(node, "blocked quantization (block_size) is not supported")
        scale = self.const(node.input[1], node, "scale").astype(np.float32)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self.err(node, f"scale {scale.reshape(-1)[:4]} must be finite and positive")
        if len(node.input) > 2 and node.input[2]:
            zp_t = self.consts.get(node.input[2])
            zp = self.const(node.input[2], node, "zero point")
            ztype = zp_t.data_type if zp_t is not None else TensorProto.UINT8
        else:  # absent: uint8 zero, or the type output_dtype names (opset 21)
            zp = np.zeros(scale.shape, np.int64)
            ztype = next((a.i for a in node.attribute if a.name == "output_dtype" and a.i),
                         TensorProto.UINT8)
        if node.op_type == "DequantizeLinear" and node.input[0] in self.consts:
            ztype = self.consts[node.input[0]].data_type
        if ztype not in CODE_TYPES:
            raise self.err(node, f"codes of type {TensorProto.DataType.Name(ztype)}; qflow "
                                 "reads int4/uint4, int8/uint8 and int16/uint16 codes")
        bits, signed = CODE_TYPES[ztype]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if zp.shape != scale.shape:
            raise self.err(node, f"scale {scale.shape} and zero point {zp.shape} differ in shape")
        return scale, zp.astype(np.int64), bits, signed, axis

    def is_code_cast(self, node: onnx.NodeProto) -> bool:
        """A Cast of a QuantizeLinear's codes to their own type (PyTorch's export puts one
        between Q and DQ): it changes nothing."""
        q = self.producer.get(node.input[0]) if node.op_type == "Cast" else None
        if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 3 or \
                q.input[2] not in self.consts:
            return False
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        return to == self.consts[q.input[2]].data_type and node.output[0] not in self.outputs

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.new_inits.append(numpy_helper.from_array(value, name))
        return name

    def quant(self, x: str, out: str, name: str, scale: np.ndarray, zp: np.ndarray,
              bits: int, signed: bool) -> onnx.NodeProto:
        return helper.make_node(
            "Quant", [x, self.initializer(f"{name}__scale", scale.astype(np.float32)),
                      self.initializer(f"{name}__zero_point", zp.astype(np.float32)),
                      self.initializer(f"{name}__bitwidth", np.array(bits, np.float32))],
            [out], name=name, domain="qonnx.custom_op.general", signed=int(signed), narrow=0,
            rounding_mode="ROUND")

    def constant_dequantize(self, node: onnx.NodeProto) -> list[onnx.NodeProto]:
        """Weights: a Quant of their float values; an int32 bias: its float values."""
        q = self.const(node.input[0], node, "data")
        if q.dtype == np.int32:
            scale = self.const(node.input[1], node, "scale").astype(np.float32)
            zp = (self.const(node.input[2], node, "zero point").astype(np.int64)
                  if len(node.input) > 2 and node.input[2] else np.zeros_like(q, np.int64))
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            if scale.size > 1:
                shape[axis % q.ndim] = scale.size
            value = (q.astype(np.int64) - zp.reshape(shape)).astype(np.float32) * scale.reshape(shape)
            self.initializer(node.output[0], value.astype(np.float32))
            return []
        scale, zp, bits, signed, axis = self.params(node)
        shape = [1] * q.ndim
        if scale.size > 1:
            if q.ndim == 0 or scale.ndim != 1 or scale.size != q.shape[axis % q.ndim]:
                raise self.err(node, f"{scale.size} scales along axis {axis} of weights "
                                     f"{q.shape}")
            shape[axis % q.ndim] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
        weights = (q.astype(np.int64) - zp).astype(np.float32) * scale  # DequantizeLinear's
        return [self.quant(self.initializer(f"{node.name or node.output[0]}__float", weights),
                           node.output[0], f"{node.name or node.output[0]}__quant", scale,
                           zp, bits, signed)]

    def activation_pair(self, dq: onnx.NodeProto) -> list[onnx.NodeProto]:
        q = self.producer.get(dq.input[0])
        if q is not None and q.op_type == "Cast":  # PyTorch's export: Q, Cast to its type, DQ
            q = self.producer.get(q.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            raise self.err(dq, "dequantizes a tensor no QuantizeLinear of this graph wrote; "
                               "qflow reads float inputs quantized inside the graph")
        sq, zq, bq, signed_q, _ = self.params(q)
        sd, zd, _, _, _ = self.params(dq)
        if sq.size != 1 or sd.size != 1:
            raise self.err(q, "activations need one scale and zero point (per tensor)")
        if sq.item() != sd.item() or zq.item() != zd.item():
            raise self.err(dq, f"dequantizes with scale {sd.item()} and zero point {zd.item()}"
                               f", but {q.name} quantized with {sq.item()} and {zq.item()}")
        return [self.quant(q.input[0], dq.output[0], f"{q.name or q.output[0]}__quant", sq, zq,
                           bq, signed_q)]

    def convert(self) -> onnx.ModelProto:
        nodes: list[onnx.NodeProto] = []
        for node in self.graph.node:
            if node.output and node.output[0] in self.folded:
                continue
            if node.op_type == "Cast" and self.is_code_cast(node):
                continue
            if node.op_type == "QuantizeLinear":
                readers = [r for c in self.consumers.get(node.output[0], [])
                           for r in (self.consumers.get(c.output[0], [])
                                     if self.is_code_cast(c) else [c])]
                if node.output[0] in self.outputs or not readers or any(
                        r.op_type != "DequantizeLinear" for r in readers):
                    reader = next((r.op_type for r in readers
                                   if r.op_type != "DequantizeLinear"), "graph output")
                    raise self.err(node, f"its integer codes feed a {reader}; qflow reads "
                                         "QuantizeLinear -> DequantizeLinear pairs around "
                                         "float ops (onnxruntime's QDQ format, not its "
                                         "QOperator format of QLinearConv / QLinearMatMul)")
            elif node.op_type == "DequantizeLinear":
                nodes += (self.constant_dequantize(node) if node.input[0] in self.consts
                          else self.activation_pair(node))
            elif node.op_type == "Constant" and node.output[0] in self.consts and any(
                    r.op_type in QDQ_OPS for r in self.consumers.get(node.output[0], [])):
                continue  # scales and zero points are initializers of the Quant nodes now
            else:
                nodes.append(node)
        used = {i for n in nodes for i in n.input}
        inits = [t for t in self.graph.initializer if t.name in used] + \
            [t for t in self.new_inits if t.name in used]
        outputs = {o.name for o in self.graph.output}
        nodes = _quantize_after_relu(nodes, inits)
        graph = helper.make_graph(_drop_identity_requantization(nodes, inits, outputs),
                                  self.graph.name, list(self.graph.input),
                                  list(self.graph.output), inits,
                                  value_info=list(self.graph.value_info))
        out = helper.make_model(graph, opset_imports=list(self.model.opset_import) + [
            helper.make_opsetid("qonnx.custom_op.general", 1)])
        out.ir_version = self.model.ir_version
        return out


def _params(values: dict[str, np.ndarray], n: onnx.NodeProto) -> tuple[bytes, ...]:
    """A Quant node's scale, zero point, bit width and flags, comparable."""
    return tuple(values[i].astype(np.float32).tobytes() for i in n.input[1:4]) + (
        bytes(a.i for a in n.attribute if a.name in ("signed", "narrow")),)


def _quantize_after_relu(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]
                         ) -> list[onnx.NodeProto]:
    """Nodes without a Quant that a Relu and an equal Quant follow (PyTorch's eager-mode
    export quantizes a layer's output, applies ReLU to it and quantizes again with the same
    parameters): Quant(Relu(Quant(x))) is Quant(Relu(x)) for a zero point inside the code
    range (a ReLU of grid values lands on the grid), so the float tail reads Relu, Quant."""
    values = {t.name: numpy_helper.to_array(t) for t in inits}
    producer = {o: n for n in nodes for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    dropped: set[int] = set()
    for n in nodes:
        if n.op_type != "Quant":
            continue
        relu = producer.get(n.input[0])
        if relu is None or relu.op_type != "Relu":
            continue
        first = producer.get(relu.input[0])
        if first is not None and first.op_type == "Quant" and _params(values, first) == \
                _params(values, n) and len(readers.get(first.output[0], [])) == 1:
            relu.input[0] = first.input[0]
            dropped.add(id(first))
    return [n for n in nodes if id(n) not in dropped]


def _drop_identity_requantization(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto],
                                  outputs: set[str]) -> list[onnx.NodeProto]:
    """Nodes without the Quants that re-quantize codes of their own grid: a Quant reached
    from an equal Quant through GRID_PRESERVING ops only sees values (k - zp) * scale that
    it maps to themselves (x / scale rounds back to k; max and layout ops pick or move
    values), so its output is its input, bit for bit."""
    values = {t.name: numpy_helper.to_array(t) for t in inits}
    producer = {o: n for n in nodes for o in n.output}
    rename: dict[str, str] = {}
    kept = []
    for n in nodes:
        n.input[:] = [rename.get(i, i) for i in n.input]
        if n.op_type == "Quant":
            src = producer.get(n.input[0])
            while src is not None and src.op_type in GRID_PRESERVING:
                src = producer.get(src.input[0])
            if src is not None and src.op_type == "Quant" and \
                    _params(values, src) == _params(values, n) and \
                    n.output[0] not in outputs:
                rename[n.output[0]] = n.input[0]
                continue
        kept.append(n)
    return kept


def normalize(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The QDQ graph as QONNX (flow.frontends.load calls it once accepted)."""
    return _Rewriter(model, path).convert()
