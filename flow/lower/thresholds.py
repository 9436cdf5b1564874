"""Collapse a layer's float tail (bias, batch norm, scales) and its activation quantizer into
per-channel integer thresholds, computed by running the graph's own tail nodes in qonnx's
executor: threshold j of channel o is the smallest integer accumulator whose quantized
output reaches level j (binary search over the accumulator's worst-case range; the tail is
monotone in the accumulator because every op in it is an affine map with a fixed sign, a
monotone rounding or a clip). Where the range is small enough, every accumulator value is
evaluated as well and must agree with the thresholds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from flow.ir import accumulator_bounds
from flow.lower.graph import Graph, QuantParams

ENUMERATE_LIMIT = 1 << 22  # accumulator values x channels evaluated exhaustively


def run_tail(g: Graph, nodes: list[onnx.NodeProto], start: str, values: np.ndarray) -> np.ndarray:
    """The graph's own tail nodes on `values` [rows, C, (1, 1)], run by qonnx's executor:
    rows of the batch axis, one value per channel (a conv's as a 1x1 frame, so that its
    [1, C, 1, 1] constants broadcast as in the graph)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    out = nodes[-1].output[0]
    consts = {i: n for n in nodes for i in n.input if i and g.is_const(i)}
    inits = [numpy_helper.from_array(np.asarray(g.const(k, consts[k])), k) for k in sorted(consts)]
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


def thresholds(g: Graph, name: str, nodes: list[onnx.NodeProto], start: str,
                q: QuantParams, real: Callable[[np.ndarray], np.ndarray], w: np.ndarray,
                x_range: tuple[int, int], rank: int = 1, sign: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds [C, K] on the accumulator, and the per-channel sign: -1 where the tail
    decreases with the accumulator, so that the caller negates those weight rows (`sign`
    given: the caller's, e.g. a requantization's, which must agree where the channel is
    not constant). `rank` is that of the op's output without the batch axis (1 dense, 3
    conv)."""
    qmin, qmax = q.code_range
    levels = np.arange(qmin + 1, qmax + 1) if not q.bipolar else np.array([1])
    channels = w.shape[0]

    def code(acc: np.ndarray, sign: np.ndarray) -> np.ndarray:  # acc [rows, C] on signed weights
        values = real(acc * sign).reshape(*acc.shape, *(1,) * (rank - 1))
        return q.codes(run_tail(g, nodes, start, values)).reshape(acc.shape)

    if sign is None:
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


def float_graph_is_exact(s: np.ndarray, w: np.ndarray, x_q: QuantParams, n_in: int) -> bool:
    """True when the float32 MatMul computes (acc - zp * rowsum) * s without rounding:
    every scale a power of two and every partial sum below 2^24 in units of the scale."""
    po2 = np.all(np.frexp(s)[0] == 0.5)
    lo, hi = x_q.code_range
    zp = int(np.asarray(x_q.zero_point).reshape(-1)[0])
    bound = n_in * int(np.abs(w).max(initial=0)) * max(abs(lo - zp), abs(hi - zp))
    return bool(po2) and bound < 2**24
