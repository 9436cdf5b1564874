"""What every weighted layer kind shares in lowering: the integer weights and scales that
its pattern matched, then the float tail that follows it, which becomes either per-channel
thresholds (a hidden layer, ending in a quantizer) or the output stage (the graph's end)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx

from flow.datatypes import DataType, dtype, smallest_int_type
from flow.ir import Layer, OutputStage, Thresholds, accumulator_bounds, dtype_range
from flow.lower.graph import QUANT_OPS, TAIL_OPS, Graph, QuantParams, data_input, elementwise, next_node
from flow.lower.thresholds import float_graph_is_exact, thresholds

log = logging.getLogger("qflow.lower")

# Builds the IR layer from the final integer weights [out, fan_in], their datatype, the
# accumulator bounds and the activation (None for the last layer).
Build = Callable[[np.ndarray, DataType, int, int, Thresholds | None], Layer]


@dataclass
class LinearMatch:
    """A matched weighted op: acc[o] = sum_k W[o, k] * x[k] over its fan-in."""

    node: onnx.NodeProto
    weights: np.ndarray  # int64 [out_channels, fan_in], zero point removed
    scale: np.ndarray  # float64 [out_channels]: input scale x weight scale
    weight_q: QuantParams
    tail: list[onnx.NodeProto]  # float ops the match adds before the graph's own tail (bias)
    start: str  # tensor the tail starts from: the op's float output before those ops
    output: str  # the op's output tensor in the graph
    build: Build


@dataclass
class Lowered:
    layer: Layer
    tensor: str  # the tensor after the layer (its activation quantizer's output)
    x_q: QuantParams | None  # that activation's quantizer; None after the last layer
    output: OutputStage | None  # set after the last layer
    exact: bool  # the float graph computes this layer's product without rounding


def weight_dtype(q: QuantParams, w: np.ndarray) -> DataType:
    if q.bipolar:
        return dtype("BIPOLAR")
    if np.all(q.zero_point == 0):
        return q.dtype
    return smallest_int_type(int(w.min()), int(w.max()))


def lower_linear(g: Graph, m: LinearMatch, name: str, x_q: QuantParams, x_dtype: DataType
                 ) -> Lowered:
    """The layer with its activation (thresholds) or, at the graph's end, the output stage."""
    w = m.weights
    x_zp = int(np.asarray(x_q.zero_point).reshape(-1)[0])
    s = m.scale
    rowsum = w.sum(axis=1)

    def real(acc: np.ndarray) -> np.ndarray:
        """The op's float output for accumulator values (the float graph's exact product)."""
        return ((acc - x_zp * rowsum) * s).astype(np.float32)

    exact = float_graph_is_exact(s, w, x_q, w.shape[1])
    if not exact:
        log.warning("%s: %s: float32 product of the QONNX graph is not exact (scales not "
                    "powers of two or sums past 2^24); rare samples may round differently "
                    "in the float executor", g.path, m.node.name)
    x_lo, x_hi = dtype_range(x_dtype)
    tail = list(m.tail)
    tensor = m.output
    nxt = next_node(g, tensor)
    while nxt is not None and nxt.op_type in TAIL_OPS:
        data_input(g, nxt, tensor)
        tail.append(nxt)
        tensor, nxt = nxt.output[0], next_node(g, nxt.output[0])
    w_dtype = weight_dtype(m.weight_q, w)
    if nxt is not None and nxt.op_type in QUANT_OPS:
        q = g.quant_params(nxt)
        if q.scale.size != 1 or q.zero_point.size != 1:
            raise g.err(nxt, "activation quantizers need one scale and zero point")
        t, sign = thresholds(g, name, tail + [nxt], m.start, q, real, w, (x_lo, x_hi))
        w = w * sign[:, None]  # channels whose tail decreases: negated rows, rising thresholds
        lo, hi = accumulator_bounds(w, x_lo, x_hi)
        acc_min, acc_max = int(lo.min()), int(hi.max())
        if not w_dtype.contains(int(w.min()), int(w.max())):
            w_dtype = smallest_int_type(int(w.min()), int(w.max()))
        qmin, _ = q.code_range
        act = Thresholds(values=np.clip(t, acc_min, acc_max + 1),
                         base=-1 if q.bipolar else qmin, step=2 if q.bipolar else 1,
                         out_dtype=q.dtype)
        return Lowered(m.build(w, w_dtype, acc_min, acc_max, act), nxt.output[0], q, None, exact)
    if nxt is None:
        lo, hi = accumulator_bounds(w, x_lo, x_hi)
        ops = [op for n in tail for op in elementwise(g, n, n.input[0])]
        output = OutputStage(acc_offset=x_zp * rowsum, acc_scale=s, ops=ops, shape=(w.shape[0],))
        layer = m.build(w, w_dtype, int(lo.min()), int(hi.max()), None)
        return Lowered(layer, tensor, None, output, exact)
    raise g.err(nxt, f"op not supported after a {m.node.op_type} (expected elementwise ops "
                     "then Quant/BipolarQuant, or the graph output)")
