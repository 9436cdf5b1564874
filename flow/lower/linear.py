"""What every weighted layer kind shares in lowering: the integer weights and scales that
its pattern matched, then the float tail that follows it, which becomes either per-channel
thresholds (a hidden layer, ending in a quantizer) or the output stage (the graph's end).

A MaxPool inside the tail (before the quantizer) is moved after it, onto the codes, where
that provably gives the same result: max commutes with a non-decreasing function, so the
tail before the pool and the whole tail must both be non-decreasing in the accumulator in
every channel (`check_pool_commutes`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper

from flow.datatypes import DataType, dtype, smallest_int_type
from flow.golden.exact import float_product_slack
from flow.ir import (
    Activation,
    IRError,
    Layer,
    OutputStage,
    Requant,
    Thresholds,
    accumulator_bounds,
)
from flow.lower.graph import (
    QUANT_OPS,
    TAIL_OPS,
    Graph,
    QuantParams,
    Stream,
    data_input,
    elementwise,
    next_node,
)
from flow.lower.requant import closest_requantization, requantization
from flow.lower.thresholds import float_graph_is_exact, run_tail, thresholds

log = logging.getLogger("qflow.lower")

# Builds the IR layer from the final integer weights [out, fan_in], their datatype, the
# accumulator bounds and the activation (None for the last layer).
Build = Callable[[np.ndarray, DataType, int, int, Activation | None], Layer]
# "auto" requantizes activations of at least this many bits (an affine tail given, and the
# requantization proven equal to the float graph's quantizer)
REQUANT_MIN_BITS = 5


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
    out_shape: tuple[int, ...]  # its shape, batch excluded: (C,) or (C, H, W)
    x_bounds: tuple[int, int]  # the values an input tap takes (the type's, and a pad value)
    build: Build
    out_index: np.ndarray  # the layout index of the op's output (see Stream)
    # what the float graph subtracts from the accumulator before its scale, per channel:
    # None for the input's zero point times the row sum (one input stream)
    acc_offset: np.ndarray | None = None
    # False where the accumulator only approximates the float graph's sum (an add whose
    # inputs' scales are aligned approximately), by at most extra_slack accumulator units
    exact_alignment: bool = True
    extra_slack: int = 0


@dataclass
class Lowered:
    layer: Layer
    stream: Stream | None  # after the layer (its activation quantizer's output); None last
    output: OutputStage | None  # set after the last layer
    exact: bool  # the float graph computes this layer's product without rounding
    pool: onnx.NodeProto | None = None  # a MaxPool of the tail, to follow on the codes
    # a requantization whose factors and bias are the float graph's own (power-of-two scales)
    requant_exact: bool = False
    # a requantization's largest difference from the float graph's quantizer, in output
    # steps over the reachable accumulators (0: proven equal, `requant_matches_thresholds`)
    requant_steps: int = 0
    # the most accumulator units its step boundaries lie from the float graph's, within
    # that graph's own float32 product error (-1: farther; `closest_requantization`)
    requant_moved: int = 0
    # thresholds kept where a requantization was tried: why, and the unequal channels
    kept_thresholds: dict[str, Any] | None = None


def weight_dtype(q: QuantParams, w: np.ndarray) -> DataType:
    if q.bipolar:
        return dtype("BIPOLAR")
    if np.all(q.zero_point == 0):
        return q.dtype
    return smallest_int_type(int(w.min()), int(w.max()))


def lower_linear(g: Graph, m: LinearMatch, name: str, x: Stream) -> Lowered:
    """The layer with its activation (thresholds) or, at the graph's end, the output stage."""
    w = m.weights
    x_zp = int(np.asarray(x.q.zero_point).reshape(-1)[0])
    s = m.scale
    offset = x_zp * w.sum(axis=1) if m.acc_offset is None else m.acc_offset

    def real(acc: np.ndarray) -> np.ndarray:
        """The op's float output for accumulator values (the float graph's exact product)."""
        return ((acc - offset) * s).astype(np.float32)

    exact = float_graph_is_exact(s, w, x.q, w.shape[1]) and m.exact_alignment
    if not exact:
        log.warning("%s: %s: float32 product of the QONNX graph is not exact (scales not "
                    "powers of two or sums past 2^24); rare samples may round differently "
                    "in the float executor", g.path, m.node.name)
    tail = list(m.tail)
    pool: onnx.NodeProto | None = None
    tensor = m.output
    nxt = next_node(g, tensor)
    while nxt is not None and (nxt.op_type in TAIL_OPS or (
            nxt.op_type == "MaxPool" and pool is None and len(m.out_shape) == 3)):
        data_input(g, nxt, tensor)
        # Not a pass (flow.lower.passes): a MaxPool inside the tail commutes only with a
        # tail non-decreasing per channel over the accumulator's range, which the layer's
        # analysis gives (check_pool_commutes). Right before the quantizer a swap would be
        # provable from the quantizer alone, but as a pass it would change lowered IRs
        # (requantizations `auto` now declines, pools behind a decreasing tail now refused).
        if nxt.op_type == "MaxPool":  # runs after the quantizer instead: here the identity
            pool, pool_at = nxt, len(tail)
            tail.append(helper.make_node("Identity", [tensor], list(nxt.output[:1]),
                                         name=f"{nxt.name}_moved"))
        else:
            tail.append(nxt)
        tensor, nxt = nxt.output[0], next_node(g, nxt.output[0])
    w_dtype = weight_dtype(m.weight_q, w)
    if nxt is not None and nxt.op_type in QUANT_OPS:
        q = g.quant_params(nxt)
        if q.scale.size != 1 or q.zero_point.size != 1:
            raise g.err(nxt, "activation quantizers need one scale and zero point")
        requant = _requantize(g, name, nxt, q, pool, m, tail, real, w)
        t, sign = thresholds(g, name, tail + [nxt], m.start, q, real, w, m.x_bounds,
                             len(m.out_shape), None if requant is None else requant[1])
        qmin, _ = q.code_range
        kept: dict[str, Any] | None = None  # why a requantization was not taken
        if requant is not None:
            candidate, _, po2 = requant
            lo, hi = accumulator_bounds(w * sign[:, None], *m.x_bounds)
            # where the float graph's product itself rounds, its step boundaries are only
            # known to within its float32 error: the requantization may lie as close
            slack = np.zeros(len(lo), np.int64) if exact else \
                float_product_slack(w, *m.x_bounds) + m.extra_slack
            chosen, diff, moved = closest_requantization(candidate, t, qmin, lo, hi, slack)
            steps = int(diff.max(initial=0))
            within = steps == 0 or (not exact and bool(np.all(moved >= 0)))
            try:  # tflite: a large factor shifts acc left past int32; half_even: 2^62
                chosen.check_range(f"layer {name}", int(lo.min()), int(hi.max()))
            except IRError as e:
                if g.activation_form == "requant":
                    raise g.err(nxt, f"layer {name}: cannot be requantized ({e}); lower it to "
                                     "thresholds") from e
                log.info("%s: layer %s keeps thresholds: %s", g.path, name, e)
                kept = {"reason": str(e), "channels": []}
            else:
                if within or g.activation_form == "requant":
                    po2 = po2 and np.array_equal(chosen.bias, candidate.bias)  # graph's own
                    return _with_activation(m, w, sign, w_dtype, chosen, q, nxt, exact, None,
                                            requant_exact=exact and po2, requant_steps=steps,
                                            requant_moved=int(moved.max(initial=0))
                                            if np.all(moved >= 0) else -1)
                unequal = np.flatnonzero(diff > 0 if exact else moved < 0)
                why = (f"its requantization would differ from the float graph's quantizer by "
                       f"up to {steps} step(s)" + ("" if exact else
                                                    ", farther than the float product's own "
                                                    "float32 error"))
                log.info("%s: layer %s keeps thresholds: %s (channels %s)", g.path, name, why,
                         unequal[:8].tolist())
                kept = {"reason": why, "max_step_difference": steps,
                        "channels": unequal.tolist()}
        if pool is not None:
            check_pool_commutes(g, pool, tail[:pool_at], m, real, sign)
        lo, hi = accumulator_bounds(w * sign[:, None], *m.x_bounds)
        levels = Thresholds(values=np.clip(t, int(lo.min()), int(hi.max()) + 1),
                            base=-1 if q.bipolar else qmin, step=2 if q.bipolar else 1,
                            out_dtype=q.dtype)
        done = _with_activation(m, w, sign, w_dtype, levels, q, nxt, exact, pool)
        done.kept_thresholds = kept
        return done
    if nxt is None and pool is None:
        lo, hi = accumulator_bounds(w, *m.x_bounds)
        ops = [op for n in tail for op in elementwise(g, n, n.input[0], m.out_shape)]
        output = OutputStage(acc_offset=offset, acc_scale=s, ops=ops, shape=(w.shape[0],))
        layer = m.build(w, w_dtype, int(lo.min()), int(hi.max()), None)
        return Lowered(layer, None, output, exact)
    at = nxt if nxt is not None else pool
    raise g.err(at, f"op not supported after a {m.node.op_type} (expected elementwise ops "
                    "then Quant/BipolarQuant, or the graph output)")


def _with_activation(m: LinearMatch, w: np.ndarray, sign: np.ndarray, w_dtype: DataType,
                     act: Activation, q: QuantParams, quant: onnx.NodeProto, exact: bool,
                     pool: onnx.NodeProto | None, requant_exact: bool = False,
                     requant_steps: int = 0, requant_moved: int = 0) -> Lowered:
    """The hidden layer: rows of decreasing channels negated, so that `act` rises with the
    accumulator, their accumulator bound and datatype, and the stream of codes after it."""
    w = w * sign[:, None]
    lo, hi = accumulator_bounds(w, *m.x_bounds)
    if not w_dtype.contains(int(w.min()), int(w.max())):
        w_dtype = smallest_int_type(int(w.min()), int(w.max()))
    layer = m.build(w, w_dtype, int(lo.min()), int(hi.max()), act)
    return Lowered(layer, Stream(quant.output[0], q, q.dtype, m.out_index), None, exact, pool,
                   requant_exact=requant_exact, requant_steps=requant_steps,
                   requant_moved=requant_moved)


def _requantize(g: Graph, name: str, quant: onnx.NodeProto, q: QuantParams,
                pool: onnx.NodeProto | None, m: LinearMatch, tail: list[onnx.NodeProto],
                real: Callable[[np.ndarray], np.ndarray], w: np.ndarray
                ) -> tuple[Requant, np.ndarray, bool] | None:
    """The layer's requantization candidate, sign and exactness (`requantization`) when the lowering's
    activation form asks for one and the tail allows it; None for thresholds."""
    form = g.activation_form
    wanted = form == "requant" or (form == "auto" and not q.bipolar
                                   and q.bitwidth >= REQUANT_MIN_BITS)
    if not wanted:
        return None
    why = "a BIPOLAR output" if q.bipolar else "a MaxPool before the quantizer" if pool else ""
    found = None if why else requantization(g, tail, m.start, q, real, w, m.x_bounds,
                                            len(m.out_shape), g.requant_rounding)
    if found is None and form == "requant":
        why = why or "its float tail is not affine in the accumulator"
        raise g.err(quant, f"layer {name}: cannot be requantized ({why}); lower it to "
                           "thresholds")
    return found


def check_pool_commutes(g: Graph, pool: onnx.NodeProto, before: list[onnx.NodeProto],
                        m: LinearMatch, real: Callable[[np.ndarray], np.ndarray],
                        sign: np.ndarray) -> None:
    """A MaxPool between a layer and its quantizer runs on the codes only where every
    channel's tail is non-decreasing: before the pool (so the pool takes the largest
    accumulator's value) and as a whole (so that value gives the largest code)."""
    lo, hi = accumulator_bounds(m.weights, *m.x_bounds)
    ends = real(np.stack([lo, hi]))
    if before:
        shape = (2, len(lo), *(1,) * (len(m.out_shape) - 1))
        ends = run_tail(g, before, m.start, ends.reshape(shape)).reshape(2, -1)
    bad = np.flatnonzero((ends[0] > ends[1]) | (sign < 0))
    if len(bad):
        raise g.err(pool, f"MaxPool before the activation quantizer does not commute with it: "
                          f"the float tail decreases in channel {bad[0]} (negative batch-norm "
                          "scale?); move the pool after the quantizer")
