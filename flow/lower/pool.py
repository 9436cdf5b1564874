"""Lowering pattern of max pooling on codes: a MaxPool whose input is a quantizer's output.

The quantizer's output is (code - zero point) * scale with one positive scale, increasing
in the code, so the float max is the max of the codes. (A MaxPool before the quantizer is
moved here by `flow.lower.linear` where it provably commutes.) ONNX pads MaxPool with -inf:
the IR's padded taps never win either. ceil_mode becomes extra bottom/right padding, with
onnxruntime's rule that the last window starts inside the input or its leading pad.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import onnx

from flow.ir import MaxPoolLayer, window_output
from flow.ir.conv import padding_only
from flow.lower.conv import frame_shape, window_attrs
from flow.lower.graph import Graph, Stream, frame_index
from flow.lower.linear import Lowered

KIND = MaxPoolLayer.kind
OP_TYPES = ("MaxPool",)
SPATIAL = True


def ceil_output(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    out = math.ceil((size + pad_before + pad_after - kernel) / stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad_before else out


def pool_layer(g: Graph, node: onnx.NodeProto, x: Stream, name: str
               ) -> tuple[MaxPoolLayer, Stream]:
    """The pool on the codes of `x` (a frame), and the stream after it."""
    if len(node.output) > 1 and node.output[1]:
        raise g.err(node, "MaxPool with an Indices output is not supported")
    c, h, w = frame_shape(g, node, x)
    kernel = tuple(int(k) for k in g.attr(node, "kernel_shape", []))
    stride, (top, left, bottom, right) = window_attrs(g, node, kernel)  # type: ignore[arg-type]
    kh, kw = kernel
    if g.attr(node, "ceil_mode", 0):
        oh = ceil_output(h, kh, stride[0], top, bottom)
        ow = ceil_output(w, kw, stride[1], left, right)
        bottom = max(bottom, (oh - 1) * stride[0] + kh - h - top)
        right = max(right, (ow - 1) * stride[1] + kw - w - left)
    else:
        oh = window_output(h, kh, stride[0], top, bottom)
        ow = window_output(w, kw, stride[1], left, right)
    if padding_only((h, w, c), (kh, kw), stride, (top, left, bottom, right)):
        raise g.err(node, f"pads {[top, left, bottom, right]} with kernel {[kh, kw]} leave a "
                          "window of padding only: ONNX's MaxPool outputs -inf there, which "
                          "no quantizer code represents")
    g.check_shape(node, "output", (c, oh, ow))
    layer = MaxPoolLayer(name=name, source=node.name, in_shape=(h, w, c), out_shape=(oh, ow, c),
                         kernel=(kh, kw), stride=stride, pads=(top, left, bottom, right),
                         input_dtype=x.dtype)
    return layer, replace(x, index=frame_index((c, oh, ow)))


def lower(g: Graph, node: onnx.NodeProto, x: Stream, name: str) -> Lowered:
    if node.input[0] != x.tensor:
        raise g.err(node, "MaxPool must take the codes of a quantizer")
    if np.any(np.asarray(x.q.scale) <= 0):
        raise g.err(node, "the quantizer before this MaxPool has a non-positive scale: the "
                          "float max is not the max of the codes")
    layer, after = pool_layer(g, node, x, name)
    return Lowered(layer, replace(after, tensor=node.output[0]), None, True)
