"""Lowering pattern of a dense layer: MatMul or Gemm with quantized weights."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from flow.datatypes import DataType
from flow.ir import DenseLayer, Thresholds
from flow.lower.graph import Graph, QuantParams
from flow.lower.linear import LinearMatch

KIND = DenseLayer.kind  # the IR layer kind this pattern produces
OP_TYPES = ("MatMul", "Gemm")


def match(g: Graph, node: onnx.NodeProto, tensor: str, name: str, x_q: QuantParams,
          x_dtype: DataType) -> LinearMatch:
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
    if np.any(w_scale != w_scale[:, :1]):
        raise g.err(node, "weight scale varies along the input axis; per-output-channel "
                          "or per-tensor scales only")
    tail: list[onnx.NodeProto] = []
    start = node.output[0]
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        tail.append(helper.make_node("Add", [start + "__acc", node.input[2]], [start],
                                     name=f"{node.name}_bias"))
        start = start + "__acc"
    scale = np.float64(np.asarray(x_q.scale).reshape(-1)[0]) * w_scale[:, 0].astype(np.float64)
    n_out, n_in = w.shape

    def build(weights: np.ndarray, w_dtype: DataType, acc_min: int, acc_max: int,
              act: Thresholds | None) -> DenseLayer:
        return DenseLayer(name=name, source=node.name, in_features=n_in, out_features=n_out,
                          input_dtype=x_dtype, weight_dtype=w_dtype,
                          weights=weights.astype(np.int8 if w_dtype.bits <= 8 else np.int32),
                          acc_min=acc_min, acc_max=acc_max, activation=act)

    return LinearMatch(node=node, weights=w, scale=scale, weight_q=w_q, tail=tail, start=start,
                       output=node.output[0], build=build)
