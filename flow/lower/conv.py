"""Lowering pattern of a 2-D convolution: Conv with quantized weights, group 1 or depthwise.

The graph's tensors are (N, C, H, W); the IR's frames are (H, W, C) and its weights
[C_out, kh, kw, C_in / group]. Zero padding of the float graph is padding with the code of
the float value 0: the input's zero point (0 for BIPOLAR, which the IR allows as a pad value
only). The accumulator's bounds take the pad value as one of the values a tap can hold.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from flow.datatypes import DataType
from flow.ir import Activation, Conv2dLayer, window_output
from flow.lower.graph import Graph, Stream, frame_index
from flow.lower.linear import Build, LinearMatch, Lowered, lower_linear

KIND = Conv2dLayer.kind
OP_TYPES = ("Conv",)
SPATIAL = True  # takes a (H, W, C) frame


def frame_shape(g: Graph, node: onnx.NodeProto, x: Stream) -> tuple[int, int, int]:
    """The input's (C, H, W), which must reach the node in the IR's frame layout."""
    if x.index.ndim != 3 or not np.array_equal(x.index, frame_index(x.index.shape)):
        raise g.err(node, f"input of shape {x.index.shape} is not an (N, C, H, W) frame as "
                          "the previous layer made it (layout ops between frames are not "
                          "supported)")
    c, h, w = x.index.shape
    return c, h, w


def window_attrs(g: Graph, node: onnx.NodeProto, kernel: tuple[int, int]
                 ) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Strides and pads (top, left, bottom, right) of a Conv or pooling node."""
    if g.attr(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise g.err(node, f"auto_pad {g.attr(node, 'auto_pad')} is not supported (explicit "
                          "pads only)")
    if any(d != 1 for d in g.attr(node, "dilations", [1, 1])):
        raise g.err(node, f"dilations {g.attr(node, 'dilations')} are not supported")
    if len(kernel) != 2:
        raise g.err(node, f"kernel {kernel}: qflow lowers 2-D windows only")
    strides = [int(v) for v in g.attr(node, "strides", [1, 1])]
    pads = [int(v) for v in g.attr(node, "pads", [0, 0, 0, 0])]
    if len(strides) != 2 or len(pads) != 4 or min(strides) < 1 or min(pads) < 0 \
            or min(kernel) < 1:
        raise g.err(node, f"kernel {list(kernel)}, strides {strides} and pads {pads}: a 2-D "
                          "window needs positive kernel and strides, and 4 pads >= 0")
    sy, sx = strides
    top, left, bottom, right = pads
    return (sy, sx), (top, left, bottom, right)


def match(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> LinearMatch:
    if node.input[0] != x.tensor:
        raise g.err(node, "the activation must be the first Conv operand")
    c, h, wd = frame_shape(g, node, x)
    w, w_scale, w_q = g.weight(node.input[1], node, 4)  # [C_out, C_in / group, kh, kw]
    co, cg, kh, kw = w.shape
    kernel = (kh, kw)
    if tuple(g.attr(node, "kernel_shape", kernel)) != kernel:
        raise g.err(node, f"kernel_shape {g.attr(node, 'kernel_shape')} != weights' {kernel}")
    stride, pads = window_attrs(g, node, kernel)
    group = int(g.attr(node, "group", 1))
    if group not in (1, c) or cg * group != c or (group > 1 and co != c):
        raise g.err(node, f"group {group} with {c} input and {co} output channels: qflow "
                          "lowers group 1 and depthwise (group = C_in = C_out)")
    per_out = w_scale.reshape(co, -1)
    if np.any(per_out != per_out[:, :1]):
        raise g.err(node, "weight scale varies inside an output channel; per-output-channel "
                          "or per-tensor scales only")
    x_lo, x_hi = x.dtype.min, x.dtype.max
    pad_value = int(np.asarray(x.q.zero_point).reshape(-1)[0])  # the code of float 0
    if any(pads):
        x_lo, x_hi = min(x_lo, pad_value), max(x_hi, pad_value)
    oh = window_output(h, kh, stride[0], pads[0], pads[2])
    ow = window_output(wd, kw, stride[1], pads[1], pads[3])
    g.check_shape(node, "output", (co, oh, ow))
    rows = w.transpose(0, 2, 3, 1).reshape(co, -1).astype(np.int64)  # (kh, kw, c) windows
    tail: list[onnx.NodeProto] = []
    start = node.output[0]
    if len(node.input) > 2 and node.input[2]:
        bias = f"{node.input[2]}__per_channel"  # [C] as [C, 1, 1]: broadcasts along axis 1
        g.consts[bias] = g.const(node.input[2], node).reshape(co, 1, 1)
        tail.append(helper.make_node("Add", [start + "__acc", bias], [start],
                                     name=f"{node.name}_bias"))
        start = start + "__acc"
    scale = np.float64(np.asarray(x.q.scale).reshape(-1)[0]) * per_out[:, 0].astype(np.float64)
    build = conv_builder(name, node, x, (h, wd, c), (oh, ow, co), kernel, stride, pads,
                         pad_value, group)
    return LinearMatch(node=node, weights=rows, scale=scale, weight_q=w_q, tail=tail,
                       start=start, output=node.output[0], out_shape=(co, oh, ow),
                       x_bounds=(x_lo, x_hi), build=build, out_index=frame_index((co, oh, ow)))


def conv_builder(name: str, node: onnx.NodeProto, x: Stream, in_shape: tuple[int, int, int],
                 out_shape: tuple[int, int, int], kernel: tuple[int, int],
                 stride: tuple[int, int], pads: tuple[int, int, int, int], pad_value: int,
                 group: int) -> Build:
    """The Conv2dLayer of these sizes from lowering's final weights [C_out, taps]."""
    c_out, c_in = out_shape[2], in_shape[2]

    def build(weights: np.ndarray, w_dtype: DataType, acc_min: int, acc_max: int,
              act: Activation | None) -> Conv2dLayer:
        return Conv2dLayer(
            name=name, source=node.name, in_shape=in_shape, out_shape=out_shape,
            kernel=kernel, stride=stride, pads=pads, pad_value=pad_value, group=group,
            input_dtype=x.dtype, weight_dtype=w_dtype,
            weights=weights.reshape(c_out, kernel[0], kernel[1], c_in // group).astype(
                np.int8 if w_dtype.bits <= 8 else np.int32),
            acc_min=acc_min, acc_max=acc_max, activation=act)

    return build


def lower(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> Lowered:
    return lower_linear(g, match(g, node, x, name), name, x)
