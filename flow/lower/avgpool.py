"""Lowering pattern of average pooling on codes: Brevitas' TruncAvgPool2d and
TruncAdaptiveAvgPool2d, exported as AveragePool (or ReduceMean over H and W, the global
pool; GlobalAveragePool likewise) on a quantizer's output, then QONNX's Trunc.

Brevitas gives the pool's float output the scale s / (kh * kw) (s: the input's scale), so
that Trunc's input, x / scale_in, is the integer window sum of codes; Trunc then computes

    code = clamp(rounding(sum / 2^shift)),  shift = round(log2(scale_out / scale_in))

(qonnx.custom_op.general.trunc), and its output is code * scale_out: a quantizer's output
for the next layer. The window's size never divides codes. The float graph recovers the
sum by rounding, which is exact while its float32 error stays under 1/2 (`sum_is_exact`).
BIPOLAR codes (+-1, value code * scale) sum to integers the same way. The lowering refuses,
naming the node, what has no such integer form: a plain AveragePool (no Trunc), a Trunc
whose input is not the window sum, an input zero point, padding left out of the count,
ceil_mode.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from flow.datatypes import DataType, quant_dtype
from flow.ir import AvgPoolLayer, window_output
from flow.lower.conv import conv_builder, frame_shape, window_attrs
from flow.lower.graph import QUANT_OPS, Graph, QuantParams, Stream, frame_index, next_node
from flow.lower.linear import LinearMatch, Lowered, lower_linear
from flow.lower.pool import ceil_output

log = logging.getLogger("qflow.lower")

KIND = AvgPoolLayer.kind
OP_TYPES = ("AveragePool", "ReduceMean", "GlobalAveragePool")
SPATIAL = True
ROUNDINGS = {"ROUND": "ROUND", "HALF_EVEN": "ROUND", "FLOOR": "FLOOR"}
F32_EPS = 2.0**-24  # float32's unit roundoff


def window(g: Graph, node: onnx.NodeProto, c: int, h: int, w: int
           ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, ...]]:
    """Kernel, stride, pads and the output's shape (batch excluded) of the pooling node."""
    if node.op_type == "GlobalAveragePool":
        return (h, w), (h, w), (0, 0, 0, 0), (c, 1, 1)
    if node.op_type == "ReduceMean":
        axes = g.attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = g.const(node.input[1], node)
        if axes is None or sorted(int(a) % 4 for a in np.ravel(axes)) != [2, 3]:
            raise g.err(node, f"ReduceMean over axes {axes}: qflow lowers the mean over H and W "
                              "(global average pooling)")
        shape = (c, 1, 1) if g.attr(node, "keepdims", 1) else (c,)
        return (h, w), (h, w), (0, 0, 0, 0), shape
    kernel = tuple(int(k) for k in g.attr(node, "kernel_shape", []))
    stride, pads = window_attrs(g, node, kernel)  # type: ignore[arg-type]
    kh, kw = kernel
    if any(pads) and not g.attr(node, "count_include_pad", 0):
        raise g.err(node, "padding left out of the average's count divides border windows by "
                          "their own size, which is not a power of two on codes; use "
                          "count_include_pad=True")
    oh = window_output(h, kh, stride[0], pads[0], pads[2])
    ow = window_output(w, kw, stride[1], pads[1], pads[3])
    if g.attr(node, "ceil_mode", 0) and (oh, ow) != (
            ceil_output(h, kh, stride[0], pads[0], pads[2]),
            ceil_output(w, kw, stride[1], pads[1], pads[3])):
        raise g.err(node, "ceil_mode adds partial windows, averaged over fewer taps; it is "
                          "not supported")
    return (kh, kw), stride, pads, g.check_shape(node, "output", (c, oh, ow))


def scalar(g: Graph, name: str, node: onnx.NodeProto, what: str) -> float:
    v = np.asarray(g.const(name, node))
    if v.size != 1:
        raise g.err(node, f"{what} must be one value per tensor (found shape {v.shape})")
    return float(v.reshape(-1)[0])


def sum_is_exact(x: QuantParams, taps: int, acc_bound: int, ratio: float) -> bool:
    """Whether the float graph's x / scale_in rounds to the window sum on every input: its
    error is at most the scales' mismatch, two divisions and the rounded scale (4 roundings),
    plus, for a scale not a power of two, the products and the summation (2 per tap)."""
    s = float(np.asarray(x.scale).reshape(-1)[0])
    po2 = float(np.log2(s)).is_integer()
    roundings = 4 + (0 if po2 else 2 * taps)
    return acc_bound < 2**24 and acc_bound * (abs(ratio - 1) + roundings * F32_EPS) < 0.5


def requantized_average(g: Graph, node: onnx.NodeProto, x: Stream, name: str,
                        kernel: tuple[int, int], stride: tuple[int, int],
                        pads: tuple[int, int, int, int], out_shape: tuple[int, ...]) -> Lowered:
    """An average pool whose float output a quantizer takes (an ONNX QDQ model's pool): the
    window sum (a depthwise convolution of unit weights, whose scale is 1 / taps) followed
    by that quantizer, lowered as any weighted layer's tail is (thresholds or a
    requantization, exact or declared), so every backend builds it as it builds a
    depthwise convolution."""
    c, h, w = frame_shape(g, node, x)
    taps = kernel[0] * kernel[1]
    if len(out_shape) != 3:  # a kept-dims-less ReduceMean: its (C,) is a 1x1 frame here
        out_shape = (c, 1, 1)
    oh, ow = out_shape[1], out_shape[2]
    pad_value = int(np.asarray(x.q.zero_point).reshape(-1)[0])  # the code of float 0
    x_lo, x_hi = x.dtype.min, x.dtype.max
    if any(pads):
        x_lo, x_hi = min(x_lo, pad_value), max(x_hi, pad_value)
    unit = QuantParams(False, np.full(1, 1.0 / taps, np.float32), np.zeros(1, np.float32), 2,
                       True, False, "ROUND")
    build = conv_builder(name, node, x, (h, w, c), (oh, ow, c), kernel, stride, pads,
                         pad_value, c)

    log.info("%s: %s: an average pool into a quantizer, lowered as a depthwise convolution "
             "of unit weights (%d taps) and that quantizer", g.path, node.name, taps)
    match = LinearMatch(
        node=node, weights=np.ones((c, taps), np.int64),
        scale=np.full(c, float(np.asarray(x.q.scale).reshape(-1)[0]) / taps), weight_q=unit,
        tail=[], start=node.output[0], output=node.output[0], out_shape=(c, oh, ow),
        x_bounds=(x_lo, x_hi), build=build, out_index=frame_index((c, oh, ow)))
    return lower_linear(g, match, name, x)


def lower(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> Lowered:
    if node.input[0] != x.tensor:
        raise g.err(node, f"{node.op_type} must take the codes of a quantizer")
    c, h, w = frame_shape(g, node, x)
    kernel, stride, pads, out_shape = window(g, node, c, h, w)
    trunc = next_node(g, node.output[0])
    if trunc is not None and trunc.op_type in QUANT_OPS:
        return requantized_average(g, node, x, name, kernel, stride, pads, out_shape)
    if trunc is None or trunc.op_type != "Trunc" or trunc.input[0] != node.output[0]:
        raise g.err(node, "an average pool must feed a QONNX Trunc (Brevitas' TruncAvgPool2d "
                          "or TruncAdaptiveAvgPool2d) or a quantizer: a float average is not "
                          "an integer code")
    if np.any(np.asarray(x.q.zero_point) != 0) or np.asarray(x.q.scale).size != 1:
        raise g.err(node, "the quantizer before an average pool needs one scale and zero "
                          "point 0 (its window sums are then sums of codes)")
    if len(trunc.input) != 6:
        raise g.err(trunc, "qflow lowers Trunc v2 (6 inputs: x, scale, zero point, input bit "
                           "width, output scale, output bit width)")
    scale_in = scalar(g, trunc.input[1], trunc, "Trunc's scale")
    if scalar(g, trunc.input[2], trunc, "Trunc's zero point") != 0:
        raise g.err(trunc, "Trunc with a non-zero zero point is not supported")
    scale_out = scalar(g, trunc.input[4], trunc, "Trunc's output scale")
    bits = scalar(g, trunc.input[5], trunc, "Trunc's output bit width")
    signed, narrow = bool(g.attr(trunc, "signed", 1)), bool(g.attr(trunc, "narrow", 0))
    if bits != int(bits) or not 2 <= bits <= 32:
        raise g.err(trunc, f"output bit width {bits} must be an integer in 2..32")
    mode = str(g.attr(trunc, "rounding_mode", "FLOOR")).upper()
    if mode not in ROUNDINGS:
        raise g.err(trunc, f"rounding mode {mode} is not supported ({', '.join(ROUNDINGS)})")
    taps = kernel[0] * kernel[1]
    in_t: DataType = x.dtype
    acc_bound = taps * max(abs(in_t.min), abs(in_t.max))
    s = float(np.asarray(x.q.scale).reshape(-1)[0])
    ratio = s / (taps * scale_in)  # 1 where Trunc's input is the window sum of codes
    if abs(ratio - 1) * acc_bound >= 0.25:
        raise g.err(trunc, f"Trunc's scale {scale_in:g} is not the pool's input scale {s:g} / "
                           f"{taps} taps: its input is not the window sum of codes")
    exact = sum_is_exact(x.q, taps, acc_bound, ratio)
    if not exact:
        log.warning("%s: %s: the float graph's window sums reach %d with float32 error: rare "
                    "samples may round differently in the float executor", g.path, node.name,
                    acc_bound)
    # qonnx's truncation: a power of two from the scales' ratio, computed as it does
    shift = int(np.round(np.log2(np.float32(scale_out) / np.float32(scale_in))))
    q = QuantParams(False, np.asarray(scale_out, np.float32).reshape(1), np.zeros(1, np.float32),
                    int(bits), signed, narrow, mode)
    lo, hi = q.code_range
    oh, ow = (out_shape[1], out_shape[2]) if len(out_shape) == 3 else (1, 1)
    layer = AvgPoolLayer(name=name, source=node.name, in_shape=(h, w, c), out_shape=(oh, ow, c),
                         kernel=kernel, stride=stride, pads=pads, input_dtype=in_t, shift=shift,
                         rounding=ROUNDINGS[mode], clamp=(lo, hi),
                         output_dtype=quant_dtype(int(bits), signed, narrow))
    index = frame_index((c, oh, ow)).reshape(out_shape)
    return Lowered(layer, Stream(trunc.output[0], q, q.dtype, index), None, exact)
