"""The int8 convolution kernel (QNN_CONV_INT8_PAIRS, firmware/qnn_conv_int8.c: input rows
packed into pairs once, four positions x four channels a pass) against numpy's naive
windows (tests/helpers/firmware.py's conv_acc) on shapes around its blocking: channels
3 .. 33 (pair groups of 2, 4, 8 and 16, odd C), output rows not a multiple of 4 wide, output
channels not a multiple of 4, kernels 1/3/5, strides 1/2, pads 0/1/2, stride larger than
the kernel, UINT8 inputs (a non-zero pad code) and UINT8 weights (w_offset); every output
form: thresholds (int8 codes and bits), the requantization, raw accumulators. Each case runs
with its scratch at the end of a static array, so that the sanitizers catch a kernel that
needs more than the planner gives it (size_report's scratch_bytes); host with ASan/UBSan and
RV32IMC under QEMU, whole models against flow.golden."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.backends.firmware import conv as fwconv
from flow.golden.requant import requantize
from flow.ir import Conv2dLayer, Requant
from flow.ir.requant import ROUNDINGS
from flow.synthetic import random_cnn_model, random_codes, random_requant, random_values
from tests.helpers.firmware import CTYPE, conv_acc, run_harness, rv32, stored

# (C, H, W), input type, layer
SHAPES = [
    ((32, 6, 7), "INT8", {"conv": 9, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"}),
    ((16, 5, 9), "UINT8", {"conv": 6, "k": 3, "stride": 2, "pad": 2, "w": "INT8",
                           "act": "UINT8"}),
    ((8, 7, 6), "INT8", {"conv": 5, "k": 5, "pad": 2, "w": "INT8", "act": "INT4"}),
    ((3, 9, 7), "UINT8", {"conv": 17, "k": 3, "stride": 2, "pad": 1, "w": "INT8",
                          "act": "BIPOLAR"}),
    ((12, 8, 11), "UINT8", {"conv": 4, "k": 5, "stride": 2, "w": "INT8", "act": "INT8"}),
    ((6, 5, 5), "INT4", {"conv": 7, "k": 1, "w": "INT8", "act": "INT8"}),
    ((33, 4, 6), "INT8", {"conv": 3, "k": 3, "w": "INT8", "act": "UINT8"}),
    ((5, 9, 9), "INT8", {"conv": 8, "k": 1, "stride": 3, "w": "INT8", "act": "INT8"}),
    ((4, 6, 5), "UINT8", {"conv": 6, "k": 3, "pad": 1, "w": "UINT8", "act": "INT8"}),
    ((7, 5, 7), "INT8", {"conv": 10, "k": 3, "stride": 2, "pad": 2, "w": "UINT8",
                         "act": "UINT8"}),
]


def layers(seed: int) -> list[Conv2dLayer]:
    out = []
    for k, (shape, t, spec) in enumerate(SHAPES):
        m = random_cnn_model(shape, t, [spec, {"dense": 3, "w": "INT2"}], seed=seed + k)
        layer = m.layers[0]
        assert isinstance(layer, Conv2dLayer)
        out.append(layer)
    return out


def variants(layer: Conv2dLayer, k: int, rng: np.random.Generator, rounding: str
             ) -> list[tuple[fwconv.ConvPlan, bool]]:
    """Every output form of the layer: its thresholds (BIPOLAR: as int8 and as bits), a
    random requantization onto its output type (multi-bit outputs), raw accumulators."""
    out: list[tuple[fwconv.ConvPlan, bool]] = []
    bipolar = layer.out_dtype.is_bipolar
    for bits in ([False, True] if bipolar else [False]):
        out.append((fwconv.plan_layer(k + len(out), layer, bits_out=bits), bits))
    if not bipolar:
        rq = random_requant(rng, layer, layer.out_dtype, rounding)
        out.append((fwconv.plan_layer(k + len(out), dataclasses.replace(
            layer, activation=rq)), False))
    out.append((fwconv.plan_layer(k + len(out), dataclasses.replace(layer, activation=None)),
                False))
    for lp, _ in out:
        assert lp.kernel == "int8_pairs", lp.kernel
    return out


def expected(layer: Conv2dLayer, x: np.ndarray, bits: bool) -> np.ndarray:
    acc = conv_acc(layer, x)
    act = layer.activation
    if act is None:
        return acc.astype("<i4").reshape(-1)
    if isinstance(act, Requant):
        return (requantize(acc, act) - fw.storage_offset(act.out_dtype)).astype(
            np.int8).reshape(-1)
    y = act.base + act.step * (acc[..., None] >= act.values[None]).sum(axis=-1)
    return stored(y, act.out_dtype, bits)


def harness(seed: int, rounding: str) -> str:
    """Every layer and output form on a random frame and on all-min / all-max frames; each
    case's scratch ends where the static array does."""
    rng = np.random.default_rng(seed)
    body, cases = [], []
    out_words = scratch_words = 1
    k = 0
    for layer in layers(seed):
        t = layer.input_dtype
        xs = [random_values(rng, t, (layer.in_features,)), np.full(layer.in_features, t.min),
              np.full(layer.in_features, t.max)]
        for lp, bits in variants(layer, k, rng, rounding):
            body.append(lp.constants_c(f"layer{k}"))
            need = lp.scratch_bytes // 4
            scratch_words = max(scratch_words, need)
            for s, x in enumerate(xs):
                xin = stored(x.reshape(-1, layer.in_shape[2]), t, False)
                want = expected(lp.layer, x, bits)
                out_words = max(out_words, want.nbytes // 4 + 1)
                body.append(fw.c_array("int8_t", f"x{k}_{s}", xin))
                body.append(fw.c_array(CTYPE[want.dtype], f"want{k}_{s}", want))
                cases.append(f"    {{&layer{k}, x{k}_{s}, want{k}_{s}, sizeof want{k}_{s}, "
                             f"{need}u, \"{layer.name} {lp.window.out_kind} in {s}\"}},")
            k += 1
    return ("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"qnn.h\"\n"
            "typedef struct {\n    const qnn_conv_t *conv;\n    const void *x, *want;\n"
            "    unsigned bytes, scratch;\n    const char *name;\n} qnn_case_t;\n"
            + "\n".join(body) + "static const qnn_case_t cases[] = {\n" + "\n".join(cases)
            + f"\n}};\nstatic uint32_t y[{out_words}];\nstatic uint32_t scratch[{scratch_words}];\n"
            "int main(void)\n{\n    unsigned k;\n    int bad = 0;\n"
            "    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {\n"
            "        uint32_t *s = scratch + sizeof scratch / 4 - cases[k].scratch;\n"
            "        memset(y, 0x55, sizeof y);\n        memset(scratch, 0xAA, sizeof scratch);\n"
            "        qnn_conv2d(cases[k].conv, cases[k].x, y, s);\n"
            "        if (memcmp(y, cases[k].want, cases[k].bytes)) {\n"
            "            printf(\"case %u (%s) differs\\n\", k, cases[k].name);\n"
            "            bad++;\n        }\n    }\n"
            "    printf(\"conv cases failed: %d\\n\", bad);\n    exit(bad != 0);\n}\n")


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_conv_int8_host(tmp_path: Path, rounding: str) -> None:
    run_harness(harness(0, rounding), tmp_path, "host", fw.SANITIZE)


@rv32
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_conv_int8_rv32(tmp_path: Path, rounding: str) -> None:
    run_harness(harness(20, rounding), tmp_path, "rv32", [])


def test_conv_int8_layout() -> None:
    """Weights in (kx, ky, channel) order, pairs within a pixel, C padded to a multiple of 4,
    rows padded to 4 and interleaved by pair; the scratch as the C kernel lays it out."""
    layer = layers(0)[3]  # C = 3, 17 output channels, 3x3 stride 2 from 9x7
    lp = fwconv.plan_layer(0, layer)
    w = layer.weights.astype(np.int64)  # [17, 3, 3, 3]
    words = lp.window.weights.reshape(-1, 3 * 3 * 2, 4)  # [row block, pair, row]
    assert words.shape == (5, 18, 4)
    a, b = w[5, 0, 1, 0], w[5, 0, 1, 1]  # row 5, tap (ky 0, kx 1), channels 0 and 1
    assert words[1, 3 * 2, 1] == np.int32(-(a * 65536 + b))  # (kx 1, ky 0): pair 6
    assert words[1, 3 * 2 + 1, 1] == np.int32(-(w[5, 0, 1, 2] * 65536))  # channel 3 is 0
    assert not words[4, :, 1:].any()  # rows 17 .. 19 are zero
    # out 4 x 3: lanes 4, pixels 2 * ceil(((4 - 1) * 2 + 3) / 2) = 10, 2 pairs each
    assert lp.scratch_bytes == 4 * (2 * 3 * 2 * 10 + 3 + 6 * 4)


def test_conv_int8_few_channels_gather() -> None:
    """One or two input channels (pixels padded to 4 would compute 2-4 times the MACs)
    gather windows for qnn_dense_int8 instead, and say why."""
    for c in (1, 2, 3):
        m = random_cnn_model((c, 6, 6), "UINT8", [
            {"conv": 5, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"}, {"dense": 3, "w": "INT8"}])
        layer = m.layers[0]
        assert isinstance(layer, Conv2dLayer)
        lp = fwconv.plan_layer(0, layer)
        assert lp.kernel == ("int8_pairs" if c >= fwconv.PAIRS_MIN_CHANNELS else "int8")
        assert (f"{c} input channel" in lp.why) == (c < fwconv.PAIRS_MIN_CHANNELS)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("target", ["host", pytest.param("rv32", marks=rv32)])
def test_int8_cnn_equals_golden(tmp_path: Path, target: str, rounding: str) -> None:
    """A model of int8 convolutions (requantized, then thresholds) on golden's samples."""
    m = random_cnn_model((5, 9, 8), "UINT8", [
        {"conv": 12, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"},
        {"conv": 16, "k": 3, "stride": 2, "pad": 1, "w": "INT8", "act": "INT8"},
        {"conv": 8, "k": 1, "w": "INT8", "act": "INT4"},
        {"dense": 5, "w": "INT8"}], seed=3, name="int8_convs")
    first = m.layers[0]
    assert isinstance(first, Conv2dLayer)
    first.activation = random_requant(np.random.default_rng(4), first, first.out_dtype,
                                      rounding)
    codes = random_codes(m, 8, seed=5)
    plan = fw.plan(m)
    assert [getattr(lp, "kernel", "") for lp in plan.layers][:3] == ["int8_pairs"] * 3
    acc = fw.run(m, tmp_path, codes, target=target, sanitize=target == "host")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))
