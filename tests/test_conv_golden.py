"""Unit tests of the IR's convolution and pooling kinds and their golden semantics, against
a naive per-position reference (plain loops over channel-last frames)."""

from __future__ import annotations

import numpy as np
import pytest

from flow import golden
from flow.datatypes import dtype
from flow.ir import Conv2dLayer, IRError, MaxPoolLayer, Thresholds, accumulator_bounds
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


def random_codes(rng: np.random.Generator, t: str, n: int, features: int) -> np.ndarray:
    ti = dtype(t)
    if ti.is_bipolar:
        return rng.choice([-1, 1], size=(n, features))
    return rng.integers(ti.min, ti.max + 1, size=(n, features))


CASES = [  # in_shape, C_out, kernel, stride, pad, input type, weight type, depthwise
    ((5, 7, 3), 4, 3, 1, 1, "UINT8", "INT2", False),
    ((9, 9, 2), 5, 3, 2, 1, "BIPOLAR", "BIPOLAR", False),
    ((6, 5, 4), 3, 1, 1, 0, "INT4", "INT4", False),
    ((11, 8, 3), 2, 5, 2, 2, "UINT2", "TERNARY", False),
    ((7, 7, 33), 6, 3, 1, 0, "BIPOLAR", "BIPOLAR", False),
    ((8, 6, 5), 5, 3, 1, 1, "INT3", "INT2", True),
    ((7, 9, 4), 4, 3, 2, 2, "BIPOLAR", "BIPOLAR", True),
    # pads as wide as the kernel: windows of padding only
    ((4, 5, 3), 4, 1, 1, 2, "UINT3", "INT3", False),
    ((5, 4, 2), 3, 3, 2, 3, "BIPOLAR", "BIPOLAR", False),
    ((4, 4, 3), 3, 3, 1, 4, "INT3", "INT2", True),
]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv_equals_naive_reference(case: tuple) -> None:
    in_shape, co, k, stride, pad, in_t, w_t, dw = case
    rng = np.random.default_rng(hash(case) % 2**32)
    layer = random_conv(rng, in_shape, co, k, stride, pad, in_t, w_t, dw, thresholds=False)
    layer.check("test")
    x = random_codes(rng, in_t, 13, layer.in_features)
    ref = naive_conv(x, layer).reshape(len(x), -1)
    assert np.array_equal(golden.layer(layer, x), ref)
    # with thresholds: the count of thresholds each channel's accumulator reaches
    act_layer = random_conv(np.random.default_rng(7), in_shape, co, k, stride, pad, in_t, w_t,
                            dw)
    acc = naive_conv(x, act_layer)
    t = act_layer.activation.values  # type: ignore[union-attr]
    want = (acc[..., None] >= t[None, None, None]).sum(-1).reshape(len(x), -1)
    assert np.array_equal(golden.layer(act_layer, x), want)


def test_conv_golden_chunks_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from flow.golden import conv

    rng = np.random.default_rng(3)
    layer = random_conv(rng, (6, 6, 3), 4, 3, 1, 1, "UINT4", "INT3", thresholds=False)
    x = random_codes(rng, "UINT4", 10, layer.in_features)
    whole = golden.layer(layer, x)
    monkeypatch.setattr(conv, "CHUNK_VALUES", 1)  # one sample per chunk
    assert np.array_equal(golden.layer(layer, x), whole)
    assert golden.layer(layer, x[:0]).shape == (0, layer.out_features)


@pytest.mark.parametrize("shape,k,stride,pads", [
    ((6, 6, 3), 2, 2, (0, 0, 0, 0)), ((7, 5, 2), 3, 2, (1, 1, 1, 1)),
    ((5, 5, 4), 2, 2, (0, 0, 1, 1)),  # ONNX ceil_mode as extra bottom/right padding
    ((9, 9, 1), 3, 1, (0, 0, 0, 0))])
@pytest.mark.parametrize("t", ["BIPOLAR", "UINT2", "INT4"])
def test_maxpool_equals_naive_reference(shape: tuple, k: int, stride: int, pads: tuple,
                                        t: str) -> None:
    rng = np.random.default_rng(5)
    h, w, c = shape
    oh, ow = out_size(h, k, stride, pads[0], pads[2]), out_size(w, k, stride, pads[1], pads[3])
    layer = MaxPoolLayer(name="pool", source="test", in_shape=shape, out_shape=(oh, ow, c),
                         kernel=(k, k), stride=(stride, stride), pads=pads,
                         input_dtype=dtype(t))
    layer.check("test")
    x = random_codes(rng, t, 9, layer.in_features)
    frames = x.reshape(-1, h, w, c)
    want = np.full((len(x), oh, ow, c), np.iinfo(np.int64).min)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(k):
                for kx in range(k):
                    iy, ix = oy * stride + ky - pads[0], ox * stride + kx - pads[1]
                    if 0 <= iy < h and 0 <= ix < w:
                        want[:, oy, ox] = np.maximum(want[:, oy, ox], frames[:, iy, ix])
    assert np.array_equal(golden.layer(layer, x), want.reshape(len(x), -1))


def test_conv_check_names_what_is_wrong() -> None:
    rng = np.random.default_rng(0)
    layer = random_conv(rng, (5, 5, 3), 4, 3, 1, 1, "UINT4", "INT2")
    layer.out_shape = (4, 5, 4)
    with pytest.raises(IRError, match="gives 5x5 positions"):
        layer.check("conv0")
    layer = random_conv(rng, (5, 5, 3), 4, 3, 1, 1, "UINT4", "INT2")
    layer.acc_max -= 1
    with pytest.raises(IRError, match="narrower than the worst case"):
        layer.check("conv0")
    layer = random_conv(rng, (5, 5, 3), 4, 3, 1, 1, "UINT4", "INT2")
    layer.pad_value = 16
    with pytest.raises(IRError, match="pad value 16 is not a UINT4 code"):
        layer.check("conv0")
    layer = random_conv(rng, (5, 5, 3), 4, 3, 1, 1, "UINT4", "INT2")
    layer.group = 2
    with pytest.raises(IRError, match="group 2"):
        layer.check("conv0")


def test_maxpool_window_of_padding_only_refused() -> None:
    """A conv takes a window of padding only; a max pool has no code to take the max of."""
    pool = MaxPoolLayer(name="pool", source="test", in_shape=(4, 4, 2), out_shape=(4, 4, 2),
                        kernel=(2, 2), stride=(2, 2), pads=(2, 2, 2, 2),
                        input_dtype=dtype("UINT2"))
    with pytest.raises(IRError, match="pool0: pads .* a window of padding only"):
        pool.check("pool0")
