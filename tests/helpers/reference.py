"""References written independently of flow.golden: the naive convolution (plain loops) over
a random IR convolution, and TFLite's MultiplyByQuantizedMultiplier on Python's big
integers, from TFLite's C definitions."""

from __future__ import annotations

import numpy as np

from flow.datatypes import dtype
from flow.ir import Conv2dLayer, Thresholds, accumulator_bounds
from flow.ir import window_output as out_size


def naive_conv(x: np.ndarray, layer: Conv2dLayer) -> np.ndarray:
    """acc [N, OH, OW, C_out] by explicit loops; padded taps take pad_value."""
    h, w, c = layer.in_shape
    oh, ow, co = layer.out_shape
    (kh, kw), (sh, sw), (top, left, _, _) = layer.kernel, layer.stride, layer.pads
    frames = x.reshape(len(x), h, w, c)
    acc = np.zeros((len(x), oh, ow, co), np.int64)
    cg = c // layer.group
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh + ky - top, ox * sw + kx - left
                    inside = 0 <= iy < h and 0 <= ix < w
                    for o in range(co):
                        g = o if layer.depthwise else 0
                        taps = frames[:, iy, ix, g * cg:(g + 1) * cg] if inside else \
                            np.full((len(x), cg), layer.pad_value)
                        acc[:, oy, ox, o] += taps @ layer.weights[o, ky, kx]
    return acc


def random_conv(rng: np.random.Generator, in_shape: tuple[int, int, int], co: int, k: int,
                stride: int, pad: int, in_t: str, w_t: str, depthwise: bool = False,
                thresholds: bool = True) -> Conv2dLayer:
    h, w, c = in_shape
    ti, tw = dtype(in_t), dtype(w_t)
    group = c if depthwise else 1
    co = c if depthwise else co
    shape = (co, k, k, c // group)
    wts = rng.choice([-1, 1], size=shape) if tw.is_bipolar else \
        rng.integers(tw.min, tw.max + 1, size=shape)
    pad_value = 0 if ti.is_bipolar else int(rng.integers(ti.min, ti.max + 1))
    lo_x, hi_x = (min(ti.min, pad_value), max(ti.max, pad_value)) if pad else (ti.min, ti.max)
    lo, hi = accumulator_bounds(wts.reshape(co, -1), lo_x, hi_x)
    oh, ow = out_size(h, k, stride, pad, pad), out_size(w, k, stride, pad, pad)
    act = None
    if thresholds:
        t = np.sort(rng.integers(int(lo.min()), int(hi.max()) + 1, size=(co, 3)), axis=1)
        act = Thresholds(values=t, base=0, step=1, out_dtype=dtype("UINT2"))
    return Conv2dLayer(name="conv", source="test", in_shape=in_shape, out_shape=(oh, ow, co),
                       kernel=(k, k), stride=(stride, stride), pads=(pad, pad, pad, pad),
                       pad_value=pad_value, group=group, input_dtype=ti, weight_dtype=tw,
                       weights=wts.astype(np.int64), acc_min=int(lo.min()),
                       acc_max=int(hi.max()), activation=act)


I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def ref_srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    v = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return v // 2**31 if v >= 0 else -((-v) // 2**31)  # C division: toward zero


def ref_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)


def ref_mbqm(x: int, m: int, shift: int) -> int:
    return ref_rdbpot(ref_srdhm(x * (1 << max(shift, 0)), m), max(-shift, 0))
