"""Lowering pattern of a dense layer: MatMul or Gemm with quantized weights.

After a convolution stack the graph flattens its (C, H, W) tensor (Flatten, Reshape,
Transpose), while the IR streams frames in (H, W, C) order: the weight columns are
permuted from the graph's order to the IR's by the stream's layout index.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from flow.datatypes import DataType
from flow.ir import Activation, DenseLayer, dtype_range
from flow.lower.graph import Graph, Stream
from flow.lower.linear import LinearMatch, Lowered, lower_linear

KIND = DenseLayer.kind  # the IR layer kind this pattern produces
OP_TYPES = ("MatMul", "Gemm")
SPATIAL = False  # takes a flat vector, not a frame


def match(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> LinearMatch:
    if node.input[0] != x.tensor:
        raise g.err(node, "the activation must be the first MatMul/Gemm operand")
    w, w_scale, w_q = g.weight(node.input[1], node, 2)  # [in, out] after transposes
    if node.op_type == "Gemm":
        if g.attr(node, "transA", 0) or g.attr(node, "alpha", 1.0) != 1.0 or \
                g.attr(node, "beta", 1.0) != 1.0:
            raise g.err(node, "Gemm with transA, alpha or beta != 1 is not supported")
        if g.attr(node, "transB", 0):
            w, w_scale = w.T, w_scale.T
    w = w.T.astype(np.int64)  # [out, in]
    w_scale = w_scale.T
    if np.any(w_scale != w_scale[:, :1]):
        raise g.err(node, "weight scale varies along the input axis; per-output-channel "
                          "or per-tensor scales only")
    n_out, n_in = w.shape
    if x.index.shape != (n_in,):
        raise g.err(node, f"takes {n_in} inputs, but its input has shape {x.index.shape} "
                          "(flatten it before the MatMul/Gemm)")
    columns = np.empty_like(w)
    columns[:, x.index] = w  # graph input f is the IR's input x.index[f]
    tail: list[onnx.NodeProto] = []
    start = node.output[0]
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        tail.append(helper.make_node("Add", [start + "__acc", node.input[2]], [start],
                                     name=f"{node.name}_bias"))
        start = start + "__acc"
    scale = np.float64(np.asarray(x.q.scale).reshape(-1)[0]) * w_scale[:, 0].astype(np.float64)

    def build(weights: np.ndarray, w_dtype: DataType, acc_min: int, acc_max: int,
              act: Activation | None) -> DenseLayer:
        return DenseLayer(name=name, source=node.name, in_features=n_in, out_features=n_out,
                          input_dtype=x.dtype, weight_dtype=w_dtype,
                          weights=weights.astype(np.int8 if w_dtype.bits <= 8 else np.int32),
                          acc_min=acc_min, acc_max=acc_max, activation=act)

    return LinearMatch(node=node, weights=columns, scale=scale, weight_q=w_q, tail=tail,
                       start=start, output=node.output[0], out_shape=(n_out,),
                       x_bounds=dtype_range(x.dtype), build=build, out_index=np.arange(n_out))


def lower(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> Lowered:
    return lower_linear(g, match(g, node, x, name), name, x)
