"""Golden semantics of a 2-D convolution: every window of the padded channel-last frame
times the weight rows (an im2col matmul in chunks of the batch), then the activation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow.golden.exact import carrier, check_bounds
from flow.golden.requant import prepare_activation
from flow.ir import Conv2dLayer
from flow.ir.conv import Pads

KINDS = (Conv2dLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

# im2col values per chunk of the batch: bounds the golden model's memory on big frames
CHUNK_VALUES = 1 << 23


def windows(x: np.ndarray, shape: tuple[int, int, int], kernel: tuple[int, int],
            stride: tuple[int, int], pads: Pads, pad_value: int) -> np.ndarray:
    """Frames [N, H*W*C] -> a strided view of their windows [N, OH, OW, kh, kw, C]."""
    h, w, c = shape
    frames = x.reshape(len(x), h, w, c)
    if any(pads):
        top, left, bottom, right = pads
        frames = np.pad(frames, ((0, 0), (top, bottom), (left, right), (0, 0)),
                        constant_values=pad_value)
    view = np.lib.stride_tricks.sliding_window_view(frames, kernel, axis=(1, 2))
    view = view[:, ::stride[0], ::stride[1]]  # [N, OH, OW, C, kh, kw]
    return view.transpose(0, 1, 2, 4, 5, 3)


def prepare(layer: Conv2dLayer) -> Callable[[np.ndarray], np.ndarray]:
    """The layer as a function of input codes [N, H*W*C] -> [N, OH*OW*C_out]."""
    lo, hi = layer.input_bounds()
    w = layer.weights
    big_w = int(np.abs(w).max()) if w.size else 0
    ftype = carrier(layer.window * big_w * max(abs(lo), abs(hi)),
                    max(abs(layer.acc_min), abs(layer.acc_max)))
    co = layer.out_channels
    rows: np.ndarray = w.reshape(co, -1).astype(ftype)
    activate = prepare_activation(layer.activation, ftype)
    per_sample = layer.out_shape[0] * layer.out_shape[1] * layer.window
    chunk = max(1, CHUNK_VALUES // max(per_sample, 1))

    def accumulate(x: np.ndarray) -> np.ndarray:
        win = windows(x.astype(ftype, copy=False), layer.in_shape, layer.kernel, layer.stride,
                      layer.pads, layer.pad_value)
        n, oh, ow = win.shape[:3]
        if layer.depthwise:  # channel c's window times its own kernel [kh, kw]
            return np.einsum("nyxijc,cij->nyxc", win, w[..., 0].astype(ftype)).reshape(n, -1)
        cols = win.reshape(n * oh * ow, layer.window)  # copies: the im2col of this chunk
        return (cols @ rows.T).reshape(n, -1)

    def run(x: np.ndarray) -> np.ndarray:
        acc = np.concatenate([accumulate(x[i:i + chunk]) for i in range(0, len(x), chunk)]) \
            if len(x) else np.zeros((0, layer.out_features), ftype)
        check_bounds(layer, acc)
        # the activation runs over the channel axis
        positions = layer.out_shape[0] * layer.out_shape[1]
        return activate(acc.reshape(len(x), positions, co)).reshape(len(x), layer.out_features)

    return run
