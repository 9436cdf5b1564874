"""Convolution and max pooling in the firmware: qnn_conv2d and qnn_maxpool against numpy
(naive loops over padded channel-last frames, independent of flow.golden) on random
shapes, storages and output kinds; whole random CNNs (flow.synthetic) on the host with
ASan/UBSan and on RV32IMC under QEMU, equal to flow.golden; arena and budgets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.backends.firmware import conv as fwconv
from flow.backends.firmware import pool as fwpool
from flow.ir import Conv2dLayer, MaxPoolLayer
from flow.resources import fill_template
from flow.synthetic import random_cnn_model, random_codes, random_values
from tests.helpers.firmware import CTYPE, HAVE_RV32, conv_acc, padded, run_harness, rv32, stored, windows

# ---- kernels against numpy ------------------------------------------------------------------


def pool_max(layer: MaxPoolLayer, x: np.ndarray) -> np.ndarray:
    xp = padded(layer, x, -(2**40))  # padding never wins
    return np.array([win.max(axis=(0, 1)) for win in windows(layer, xp)])


def expected(layer: Conv2dLayer | MaxPoolLayer, x: np.ndarray, bits: bool) -> np.ndarray:
    if isinstance(layer, MaxPoolLayer):
        return stored(pool_max(layer, x), layer.input_dtype, bits)
    acc = conv_acc(layer, x)
    act = layer.activation
    if act is None:
        return acc.astype("<i4").reshape(-1)
    y = act.base + act.step * (acc[..., None] >= act.values[None]).sum(axis=-1)
    return stored(y, act.out_dtype, bits)


def one_layer(seed: int, shape: tuple[int, int, int], in_t: str, spec: dict[str, Any]
              ) -> Conv2dLayer | MaxPoolLayer:
    """A random conv or pool (flow.synthetic's, followed by a dense layer to make a model)."""
    m = random_cnn_model(shape, in_t, [spec, {"dense": 3, "w": "INT2"}], seed=seed)
    return m.layers[0]


def harness(layers: list[Conv2dLayer | MaxPoolLayer], rng: np.random.Generator) -> str:
    """Every layer on a random frame and on all-min / all-max frames, in each storage its
    outputs can take (BIPOLAR: int8 and bits; conv also as raw accumulators)."""
    body, cases, names = [], [], []
    out_words = scratch_words = 1
    k = 0
    for n, layer in enumerate(layers):
        variants = []  # (plan, input as bits, output as bits), each with its own index
        if isinstance(layer, MaxPoolLayer):
            for b in ([False, True] if layer.input_dtype.is_bipolar else [False]):
                variants.append((fwpool.plan_layer(k + len(variants), layer, bits_out=b), b, b))
        else:
            in_bits = fwconv.reads_bits(layer)
            for b in ([False, True] if layer.out_dtype.is_bipolar else [False]):
                variants.append((fwconv.plan_layer(k + len(variants), layer, bits_out=b),
                                 in_bits, b))
            raw = dataclasses.replace(layer, activation=None)
            variants.append((fwconv.plan_layer(k + len(variants), raw), in_bits, False))
        t = layer.input_dtype
        lo = -1 if t.is_bipolar else t.min
        xs = [random_values(rng, t, (layer.in_features,)), np.full(layer.in_features, lo),
              np.full(layer.in_features, t.max)]
        for lp, in_bits, out_bits in variants:
            obj = f"layer{k}"
            body.append(lp.constants_c(obj))
            scratch_words = max(scratch_words, lp.scratch_bytes // 4 + 1)
            for s, x in enumerate(xs):
                xin = stored(x.reshape(-1, layer.in_shape[2]), t, in_bits)
                want = expected(lp.layer, x, out_bits)
                out_words = max(out_words, want.nbytes // 4 + 1)
                body.append(fw.c_array(CTYPE[xin.dtype], f"x{k}_{s}", xin))
                body.append(fw.c_array(CTYPE[want.dtype], f"want{k}_{s}", want))
                conv = f"&{obj}, 0" if isinstance(lp, fwconv.ConvPlan) else f"0, &{obj}"
                cases.append(f"    {{{conv}, x{k}_{s}, want{k}_{s}, sizeof want{k}_{s}}},")
                kind = getattr(lp, "kernel", "pool")
                names.append(f'    "{layer.name} #{n} ({kind}, {lp.layer.out_dtype}, '
                             f'out bits {int(out_bits)}), input {s}",')
            k += 1
    return fill_template("firmware", "harness/conv_cases.c", definitions="\n".join(body),
                         cases="\n".join(cases), names="\n".join(names),
                         out_words=out_words, scratch_words=scratch_words)


# (C, H, W), input type, layer: strides 1/2, pads 0/1/2, kernels 1/3/5, odd sizes,
# depthwise, channels around multiples of 32, binary and multi-bit weights/activations
LAYERS = [
    ((3, 7, 9), "BIPOLAR", {"conv": 5, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"}),
    ((33, 5, 6), "BIPOLAR", {"conv": 40, "k": 3, "stride": 2, "pad": 2, "w": "BIPOLAR",
                             "act": "BIPOLAR"}),
    ((32, 6, 5), "BIPOLAR", {"conv": 32, "k": 5, "pad": 2, "w": "BIPOLAR", "act": "UINT2"}),
    ((64, 3, 3), "BIPOLAR", {"conv": 7, "k": 1, "w": "BIPOLAR", "act": "BIPOLAR"}),
    ((3, 9, 7), "UINT8", {"conv": 9, "k": 5, "stride": 2, "pad": 2, "w": "BIPOLAR",
                          "act": "BIPOLAR"}),
    ((3, 6, 5), "UINT8", {"conv": 40, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"}),
    ((5, 7, 7), "INT8", {"conv": 11, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "INT4"}),
    ((3, 8, 7), "UINT8", {"conv": 17, "k": 3, "stride": 2, "pad": 1, "w": "INT8",
                          "act": "UINT8"}),
    ((6, 5, 5), "INT4", {"conv": 9, "k": 3, "w": "INT4", "act": "BIPOLAR"}),
    ((7, 6, 5), "BIPOLAR", {"conv": 10, "k": 3, "pad": 1, "w": "TERNARY", "act": "TERNARY"}),
    ((4, 5, 9), "UINT4", {"conv": 12, "k": 1, "stride": 2, "w": "UINT8", "act": "INT8"}),
    ((9, 7, 6), "UINT8", {"conv": 0, "k": 3, "pad": 1, "depthwise": True, "w": "INT8",
                          "act": "UINT8"}),
    ((35, 5, 5), "BIPOLAR", {"conv": 0, "k": 3, "stride": 2, "pad": 1, "depthwise": True,
                             "w": "BIPOLAR", "act": "BIPOLAR"}),
    # pads as wide as the kernel: windows of padding only, rows and columns of them
    ((3, 4, 5), "UINT8", {"conv": 6, "k": 1, "pad": 2, "w": "INT3", "act": "UINT2"}),
    ((5, 4, 4), "INT4", {"conv": 0, "k": 3, "pad": 3, "stride": 2, "depthwise": True,
                         "w": "INT2", "act": "INT3"}),
    ((33, 3, 4), "BIPOLAR", {"conv": 9, "k": 3, "pad": 4, "w": "BIPOLAR", "act": "BIPOLAR"}),
    ((4, 3, 3), "BIPOLAR", {"conv": 5, "k": 1, "pad": 2, "w": "INT2", "act": "UINT2"}),
    ((33, 7, 7), "BIPOLAR", {"pool": 3, "stride": 2, "pad": 1}),
    ((5, 6, 7), "UINT8", {"pool": 2}),
    ((4, 5, 5), "INT3", {"pool": 3, "stride": 1, "pad": 2}),
]


# binary convolutions whose blocks of 32 channels are at least 2/3 full: bit-sliced
SLICED = [
    ((3, 7, 9), {"conv": 24, "k": 3, "pad": 1}),
    ((33, 5, 6), {"conv": 45, "k": 3, "stride": 2, "pad": 2}),
    ((40, 6, 5), {"conv": 32, "k": 5, "pad": 2}),
    ((64, 3, 3), {"conv": 64, "k": 1}),
    ((35, 7, 6), {"conv": 23, "k": 3}),
]
SLICED_LONG = [((520, 4, 3), {"conv": 60, "k": 3, "stride": 2, "pad": 1})]  # 153 words


def sliced_layers(seed: int, specs: list[tuple[tuple[int, int, int], dict[str, Any]]]
                  ) -> list[Conv2dLayer | MaxPoolLayer]:
    layers = [one_layer(seed + k, shape, "BIPOLAR", {**spec, "w": "BIPOLAR", "act": "BIPOLAR"})
              for k, (shape, spec) in enumerate(specs)]
    assert {fwconv.plan_layer(0, la, bits_out=True).kernel for la in layers
            if isinstance(la, Conv2dLayer)} == {"xnor_sliced"}
    return layers


def layer_set(seed: int) -> list[Conv2dLayer | MaxPoolLayer]:
    return [one_layer(seed + k, shape, t, spec) for k, (shape, t, spec) in enumerate(LAYERS)
            ] + sliced_layers(seed + 50, SLICED)


@pytest.mark.slow
def test_conv_xnor_sliced_long_windows(tmp_path: Path) -> None:
    """Windows of more than 127 words: counts added up across the window's rows."""
    src = harness(sliced_layers(30, SLICED_LONG), np.random.default_rng(4))
    run_harness(src, tmp_path, "host", fw.SANITIZE)
    if HAVE_RV32:
        run_harness(src, tmp_path, "rv32", [])


def test_conv_pool_kernels_host(tmp_path: Path) -> None:
    run_harness(harness(layer_set(0), np.random.default_rng(1)), tmp_path, "host",
                fw.SANITIZE + ["-DQNN_PORTABLE_POPCOUNT"])


@rv32
def test_conv_pool_kernels_rv32(tmp_path: Path) -> None:
    run_harness(harness(layer_set(10), np.random.default_rng(2)), tmp_path, "rv32", [])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_conv_pool_kernels_sweep(tmp_path: Path, seed: int) -> None:
    src = harness(layer_set(100 * (seed + 1)), np.random.default_rng(seed))
    run_harness(src, tmp_path, "host", fw.SANITIZE + ["-mpopcnt"])
    if HAVE_RV32:
        run_harness(src, tmp_path, "rv32", [])


# ---- whole models against golden ------------------------------------------------------------

BIN = {"w": "BIPOLAR", "act": "BIPOLAR"}
CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    # binary: bit frames throughout, a pool on bits, a dense layer on a 33-channel frame
    "bin": ((3, 9, 9), "BIPOLAR", [{"conv": 40, "k": 3, "pad": 1, **BIN}, {"pool": 2},
                                   {"conv": 33, "k": 3, "stride": 2, "pad": 1, **BIN},
                                   {"dense": 10, "w": "BIPOLAR"}]),
    # bit-sliced: a convolution's frame of 64 channels, a hidden dense layer on a
    # 33-channel frame (pixel-aligned words)
    "sliced": ((3, 6, 6), "BIPOLAR", [{"conv": 64, "k": 3, "pad": 1, **BIN},
                                      {"conv": 33, "k": 3, "stride": 2, **BIN},
                                      {"dense": 24, **BIN}, {"dense": 10, "w": "BIPOLAR"}]),
    # the usual first layer: 8-bit pixels x binary weights, then binary, to a 1x1 conv out
    "u8_bin": ((3, 11, 11), "UINT8", [{"conv": 16, "k": 5, "stride": 2, "pad": 2, **BIN},
                                      {"conv": 32, "k": 3, **BIN}, {"pool": 2, "pad": 1},
                                      {"conv": 6, "k": 3, "w": "BIPOLAR"}]),
    # multi-bit: depthwise, a padded pool on int8 codes, a 1x1 conv, int8 dense
    "multi": ((3, 11, 7), "UINT8", [
        {"conv": 16, "k": 5, "pad": 2, "w": "INT8", "act": "UINT4"},
        {"conv": 16, "k": 3, "pad": 1, "depthwise": True, "w": "INT4", "act": "INT4"},
        {"pool": 3, "stride": 2, "pad": 1},
        {"conv": 20, "k": 1, "w": "TERNARY", "act": "BIPOLAR"},
        {"dense": 5, "w": "INT8"}]),
    # BIPOLAR frames read as int8 (depthwise, multi-bit weights) and as bits, a pool between
    "mixed": ((34, 7, 7), "BIPOLAR", [
        {"conv": 0, "k": 3, "pad": 1, "depthwise": True, **BIN},
        {"pool": 2, "stride": 1},
        {"conv": 12, "k": 3, "stride": 2, "w": "INT2", "act": "BIPOLAR"},
        {"conv": 9, "k": 1, **BIN}, {"dense": 4, "w": "UINT3"}]),
}
FAST_HOST = ["bin", "multi", "mixed"]
FAST_RV32 = ["u8_bin", "mixed"]


def cnn_and_codes(name: str, n: int = 12, seed: int = 0):  # noqa: ANN201 - a test helper
    shape, t, layers = CNNS[name]
    m = random_cnn_model(shape, t, layers, seed=seed, name=name)
    return m, random_codes(m, n, seed=seed + 1)


@pytest.mark.parametrize("name", FAST_HOST)
def test_cnn_host_sanitized_equals_golden(tmp_path: Path, name: str) -> None:
    m, codes = cnn_and_codes(name)
    acc = fw.run(m, tmp_path, codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@rv32
@pytest.mark.parametrize("name", FAST_RV32)
def test_cnn_rv32_equals_golden(tmp_path: Path, name: str) -> None:
    m, codes = cnn_and_codes(name)
    acc = fw.run(m, tmp_path, codes, target="rv32")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("name", sorted(CNNS))
def test_cnn_both_targets(tmp_path: Path, name: str, seed: int) -> None:
    m, codes = cnn_and_codes(name, n=32, seed=seed)
    ref = golden.run_codes(m, codes)
    np.testing.assert_array_equal(fw.run(m, tmp_path, codes, "host", sanitize=True), ref)
    if HAVE_RV32:
        np.testing.assert_array_equal(fw.run(m, tmp_path, codes, "rv32"), ref)


def test_cnn_plan_storage_and_arena() -> None:
    """Bit frames where XNOR windows read them (a pool in between follows its consumer),
    word-aligned pixels; the arena is the largest input + output + scratch of a layer."""
    m, _ = cnn_and_codes("bin")
    p = fw.plan(m)
    assert p.input_kind == "bits"
    assert [getattr(lp, "kernel", "pool") for lp in p.layers] == ["xnor", "pool", "xnor", "xnor"]
    # 9x9 pixels of 3 channels: one word a pixel; 40 channels: two words a pixel
    assert p.buffers == [4 * 81, 4 * 81 * 2, 4 * 16 * 2, 4 * 4 * 2]
    assert p.layers[3].in_stored == 4 * 64  # the dense layer reads 4 pixels of 2 words
    live = [p.buffers[0] + p.buffers[1] + p.layers[0].scratch_bytes,
            p.buffers[1] + p.buffers[2], p.buffers[2] + p.buffers[3] + p.layers[2].scratch_bytes,
            p.buffers[3]]
    assert p.arena == max(live)
    for k, lp in enumerate(p.layers):  # input, output and scratch of a layer never overlap
        spans = [(p.offsets[j], p.offsets[j] + p.buffers[j]) for j in (k, k + 1)
                 if j < len(p.buffers)]
        spans.append((p.scratch[k], p.scratch[k] + lp.scratch_bytes))
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
        assert spans[-1][1] <= p.arena
    m, _ = cnn_and_codes("mixed")
    p = fw.plan(m)
    # depthwise reads the caller's int8 -1/+1; the pool after it feeds INT2 weights: int8
    assert p.input_kind == "direct"
    assert [getattr(lp, "kernel", "pool") for lp in p.layers] == [
        "depthwise", "pool", "packed", "xnor", "packed"]
    assert not p.layers[1].bits


def test_cnn_budget_names_the_buffer(tmp_path: Path) -> None:
    """A CNN whose frames exceed a chip's SRAM fails for that chip, naming the buffer, its
    size and the budget; it fits a bigger one."""
    m = random_cnn_model((3, 140, 140), "UINT8", [
        {"conv": 16, "k": 3, "pad": 1, "w": "INT8", "act": "UINT8"},
        {"pool": 4}, {"dense": 4, "w": "INT8"}], name="wide")
    p = fw.plan(m)
    frame = 140 * 140 * 16
    assert frame in p.buffers
    with pytest.raises(fw.FirmwareError) as e:
        fw.generate(m, tmp_path, chip="esp32c3")
    msg = str(e.value)
    assert f"holding the outputs of conv0, {frame} bytes" in msg, msg
    assert "400 KB SRAM of the esp32c3" in msg, msg
    fw.generate(m, tmp_path, chip="esp32s3")
    rep = fw.size_report(p, "esp32s3")
    assert rep["budgets"]["esp32s3"]["fits"] and not rep["budgets"]["esp32c3"]["fits"]
