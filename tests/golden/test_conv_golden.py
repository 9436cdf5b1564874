"""Unit tests of the IR's convolution and pooling kinds and their golden semantics, against
a naive per-position reference (plain loops over channel-last frames)."""

from __future__ import annotations

import numpy as np
import pytest

from flow import golden
from flow.datatypes import dtype
from flow.ir import IRError, MaxPoolLayer
from flow.ir import window_output as out_size
from tests.helpers.reference import naive_conv, random_conv


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
