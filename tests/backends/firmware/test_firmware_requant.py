"""The firmware's requantization (QNN_OUT_REQUANT) in both roundings: qnn_requantize
(tflite) against a big-integer reference written from TFLite's definitions
(tests/helpers/reference.py) and qnn_requantize_half_even against golden's requantize, on random
and extreme multipliers, shifts, biases and accumulators, with the portable 64-bit products
(QNN_MUL64_PORTABLE) too; each dense kernel with requantized outputs against numpy; whole
models (dense and conv layers, requantization beside thresholds) on the host with
sanitizers and on RV32IMC, equal to flow.golden on every sample."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.backends.firmware.toolchain import CFLAGS, missing_tools
from flow.datatypes import dtype
from flow.golden.requant import requantize
from flow.ir import DenseLayer, Layer, Model, Requant
from flow.ir.activation import check_activation
from flow.ir.requant import INT32_MAX, INT32_MIN, ROUNDINGS
from flow.synthetic import (
    random_cnn_model,
    random_codes,
    random_model,
    random_requant,
    requantize_hidden,
)
from tests.helpers.firmware import kernel_harness, make_layer, run_harness, rv32
from tests.helpers.reference import ref_mbqm

LX106 = fw.TARGETS["lx106"]


def forms(layers: list[Layer]) -> list[str]:
    return [type(getattr(la, "activation", None)).__name__ for la in layers]


# ---- the C function ----------------------------------------------------------------------


def requantize_cases(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, multiplier, shift): random over the whole int32 range with right shifts, small x
    with left shifts (x * 2^shift in int32), and the extremes: multipliers 2^31 - 1, 2^30,
    2^30 + 1 and 0; shifts 0, 30, -31, -1; x at INT32_MIN / INT32_MAX, around 0, and
    exact ties of both roundings; INT32_MIN x INT32_MIN (SRDHM's one saturation)."""
    rng = np.random.default_rng(seed)
    m = rng.integers(2**30, 2**31, size=n)
    shift = rng.integers(-31, 1, size=n)
    x = rng.integers(INT32_MIN, INT32_MAX + 1, size=n)
    left = rng.random(n) < 0.3
    shift[left] = rng.integers(1, 31, size=left.sum())
    x[left] = rng.integers(-(2**31), 2**31, size=left.sum()) >> shift[left]
    edges = [(INT32_MIN, INT32_MIN, 0), (INT32_MIN, INT32_MAX, 0), (INT32_MAX, INT32_MAX, 0),
             (INT32_MIN, 2**30, -31), (INT32_MAX, INT32_MAX, -31), (-1, INT32_MAX, -31),
             (1, 2**30, 0), (-1, 2**30, 0), (3, 2**30, 0), (-3, 2**30, 0), (6, 2**30, -1),
             (-6, 2**30, -1), (1, 2**30, -1), (-1, 2**30, -1), (1, 2**30, 30), (-1, 2**30, 30),
             (-(2**30), 2**30 + 1, 1), (2**30 - 1, INT32_MAX, 1), (12345, 0, 5), (-7, 0, -3),
             (INT32_MAX, 2**30, -30), (INT32_MIN, INT32_MAX, -30), (-5, INT32_MAX, 0),
             (-(2**30) - 1, INT32_MAX - 1, -2)]
    for k, (xv, mv, sv) in enumerate(edges):
        x[k], m[k], shift[k] = xv, mv, sv
    return x, m, shift


# clamps of the half_even cases: int8 codes, a narrow range, none to speak of (int32)
CLAMPS = [(0, -128, 127), (-3, -7, 5), (17, INT32_MIN, INT32_MAX)]


def half_even_cases(seed: int, n: int = 3000) -> list[tuple[int, int, int, int, int]]:
    """(acc, multiplier, shift, bias, clamp group): the product p = acc * m + bias near
    random codes (fractions at random), exact ties of both parities and signs, within one
    of a tie, p anywhere below 2^62 (wide results, saturating the int8 clamp); shifts 1
    and 62, multipliers 0 and 2^31 - 1 (at shift 31), negative accumulators."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        shift = int(rng.integers(1, 63)) if k % 7 else int(rng.choice([1, 2, 31, 32, 33, 62]))
        m = int(rng.integers(0, 2**31)) if k % 11 else int(rng.choice([0, 1, INT32_MAX]))
        if k % 13 == 0:
            m, shift = INT32_MAX, 31
        acc = int(rng.integers(-(2**30), 2**30)) >> int(rng.integers(0, 31))
        y = int(rng.integers(-300, 301))
        p = [y * 2**shift + int(rng.integers(0, 2**shift)),  # a random fraction
             y * 2**shift + 2 ** (shift - 1),  # a tie: y + 1/2, y of either parity and sign
             y * 2**shift + 2 ** (shift - 1) + int(rng.choice([-1, 1])),
             int(rng.integers(-(2**62) + 1, 2**62))][k % 4]
        p = max(min(p, 2**62 - 1), 1 - 2**62)
        out.append((acc, m, shift, p - acc * m, k % len(CLAMPS)))
    return out


def half_even_want(cases: list[tuple[int, int, int, int, int]]) -> list[int]:
    """golden's requantize, one layer of one channel per case"""
    want = []
    for acc, m, shift, bias, g in cases:
        zp, lo, hi = CLAMPS[g]
        r = Requant(bias=np.array([bias]), multiplier=np.array([m]), shift=np.array([shift]),
                    zero_point=zp, clamp_min=lo, clamp_max=hi, out_dtype=dtype("INT32"),
                    rounding="half_even")
        want.append(int(requantize(np.array([acc]), r)[0]))
    return want


def requantize_harness(seed: int) -> str:
    """qnn_requantize (tflite) and qnn_requantize_half_even against their references."""
    x, m, s = requantize_cases(seed)
    want = [ref_mbqm(int(a), int(b), int(c)) for a, b, c in zip(x, m, s, strict=True)]
    he = half_even_cases(seed)
    acc, mult, shift, bias, group = (np.array(v, dtype=object) for v in zip(*he, strict=True))
    arrays = "".join(fw.c_array(t, name, v).replace("const", "static const") for t, name, v in (
        ("int32_t", "xs", x), ("int32_t", "ms", m), ("int32_t", "ss", s),
        ("int32_t", "want", np.array(want)), ("int32_t", "he_acc", acc),
        ("int32_t", "he_m", mult), ("int8_t", "he_n", shift),
        ("int64_t", "he_c", bias + 2 ** (shift - 1)),
        ("int32_t", "he_clamp", np.array([CLAMPS[g] for g in group])),
        ("int32_t", "he_want", np.array(half_even_want(he), dtype=object))))
    return ("#include <stdio.h>\n#include <stdlib.h>\n#include \"qnn.h\"\n" + arrays
            + f"int main(void)\n{{\n    int bad = 0;\n    unsigned k;\n"
            f"    for (k = 0; k < {len(x)}u; k++)\n"
            f"        if (qnn_requantize(xs[k], ms[k], ss[k]) != want[k] && bad++ < 5)\n"
            f'            printf("qnn_requantize(%ld, %ld, %ld) = %ld, not %ld\\n", '
            f"(long)xs[k], (long)ms[k], (long)ss[k],\n"
            f"                   (long)qnn_requantize(xs[k], ms[k], ss[k]), (long)want[k]);\n"
            f"    for (k = 0; k < {len(he)}u; k++) {{\n"
            f"        const int32_t *c = he_clamp + 3 * k;\n"
            f"        const int32_t y = qnn_requantize_half_even(he_acc[k], he_m[k], he_c[k], "
            f"he_n[k], c[0], c[1], c[2]);\n"
            f"        if (y != he_want[k] && bad++ < 10)\n"
            f'            printf("half_even case %u: %ld, not %ld\\n", k, (long)y, '
            f"(long)he_want[k]);\n    }}\n"
            f'    printf("kernel cases failed: %d\\n", bad);\n    exit(bad != 0);\n}}\n')


def test_reference_covers_the_extremes() -> None:
    """The cases reach what they claim: SRDHM's saturation, both signs, both shift ends;
    half_even: ties rounding down and up on both sides of 0, shifts 1 and 62, multipliers
    0 and 2^31 - 1, results saturating both ends and results beyond int8."""
    x, m, s = requantize_cases(0)
    assert ((x == INT32_MIN) & (m == INT32_MIN)).any()
    assert {0, 30, -31} <= set(s.tolist()) and (x < 0).mean() > 0.3
    assert ref_mbqm(INT32_MIN, INT32_MIN, 0) == INT32_MAX
    assert all(INT32_MIN <= int(a) * 2 ** max(int(b), 0) <= INT32_MAX for a, b in zip(x, s, strict=True))
    he = half_even_cases(0)
    want = half_even_want(he)
    assert all(abs(a * mm + b) < 2**62 for a, mm, _, b, _ in he)
    assert {1, 62} <= {c[2] for c in he} and {0, INT32_MAX} <= {c[1] for c in he}
    ties = [(a * mm + b) >> n for a, mm, n, b, _ in he if (a * mm + b) % 2**n == 2 ** (n - 1)]
    assert {0, 1} <= {t % 2 for t in ties if t < 0} and {0, 1} <= {t % 2 for t in ties if t > 0}
    assert {-128, 127, -7, 5} <= set(want) and max(want) > 2**20 and min(want) < -(2**20)


# the portable 64-bit products (QNN_MUL64_PORTABLE, Xtensa lx106) checked on the host too
@pytest.mark.parametrize(("target", "flags"), [
    ("host", fw.SANITIZE), ("host", ["-DQNN_MUL64_PORTABLE=1", *fw.SANITIZE]),
    pytest.param("rv32", [], marks=rv32)])
def test_requantize_equals_references(tmp_path: Path, target: str, flags: list[str]) -> None:
    run_harness(requantize_harness(seed=7), tmp_path, target, flags)


@pytest.mark.skipif(bool(missing_tools(LX106)), reason="; ".join(missing_tools(LX106)))
def test_requantization_needs_no_libgcc_multiply_on_lx106(tmp_path: Path) -> None:
    """The lx106's libgcc lacks __muldi3 (and the divisions): the requantization in both
    roundings, built by the lx106 record's compiler and flags, calls no libgcc helper."""
    obj = tmp_path / "qnn_requant.o"
    subprocess.run([LX106.compiler, *LX106.cflags, "-ffreestanding", *CFLAGS,
                    f"-I{fw.runtime_dir()}", "-c", str(fw.runtime_dir() / "qnn_requant.c"),
                    "-o", str(obj)], check=True)
    undefined = subprocess.run([f"{LX106.binutils}nm", "-u", str(obj)], check=True,
                               capture_output=True, text=True).stdout.split()
    assert not [u for u in undefined if u.startswith("__")], undefined


# ---- the dense kernels ---------------------------------------------------------------------

KERNEL_COMBOS = [  # input, weights, output: every dense kernel with requantized outputs
    ("INT8", "INT8", "INT8"), ("UINT8", "INT8", "UINT8"), ("INT8", "INT4", "INT4"),
    ("UINT8", "TERNARY", "INT8"), ("UINT8", "UINT8", "UINT4"), ("TERNARY", "BIPOLAR", "INT8"),
    ("INT8", "BIPOLAR", "UINT8"), ("BIPOLAR", "BIPOLAR", "INT8"), ("BIPOLAR", "INT8", "INT3"),
]


def requant_layers(seed: int, rounding: str) -> list[DenseLayer]:
    rng = np.random.default_rng(seed)
    layers = []
    for k, (x_t, w_t, o_t) in enumerate(KERNEL_COMBOS):
        n_in, n_out = [(33, 9), (64, 17), (95, 8), (130, 5)][k % 4]
        layer = make_layer(rng, n_in, n_out, x_t, w_t, o_t, extreme=k % 3 == 0)
        layer.activation = random_requant(rng, layer, dtype(o_t), rounding)
        check_activation(layer.activation, "test", n_out, layer.acc_min, layer.acc_max)
        layers.append(layer)
    return layers


# sanitized host builds take the longest (~35 s each on 2 loaded cores): `make test` keeps
# the C function's (UBSan on the requantization's arithmetic), the rest run in test-all
SLOW_HOST = pytest.param("host", marks=pytest.mark.slow)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("target", [SLOW_HOST, pytest.param("rv32", marks=rv32)])
def test_dense_kernels_requantize(tmp_path: Path, target: str, rounding: str) -> None:
    """Every kernel (int8 pairs and compact int8, packed, bit-serial and table BIPOLAR
    weights, XNOR) stores the requantized codes numpy computes (golden's requantize)."""
    layers = requant_layers(3, rounding)
    kernels = {fw.plan_layer(0, la).kernel for la in layers}
    assert kernels == {"int8_pairs", "packed", "bipolar_weights", "bipolar_table", "xnor"}
    run_harness(kernel_harness(layers, np.random.default_rng(5)), tmp_path, target,
                fw.SANITIZE if target == "host" else [])


# ---- whole models --------------------------------------------------------------------------


def mlp(rounding: str = "half_even") -> Model:
    """Requantized int8 pairs, table (BIPOLAR weights on 8-bit codes) and packed layers,
    thresholds to BIPOLAR between them, an XNOR layer requantized."""
    m = random_model([50, 40, 33, 31, 17, 5], ["INT8", "BIPOLAR", "INT4", "BIPOLAR", "INT8"],
                     ["UINT8", "INT8", "BIPOLAR", "INT8"], "UINT8", seed=1, name="rq_mlp")
    return requantize_hidden(m, seed=2, rounding=rounding)


def tiny(rounding: str = "half_even") -> Model:
    """Few narrow inputs: accumulators of a few levels, factors above 1 (tflite: left
    shifts; half_even: shifts below 32, the 64-bit path)."""
    m = requantize_hidden(random_model([3, 5, 4, 2], ["INT2", "INT3", "INT2"], ["INT4", "UINT5"],
                                 "UINT2", seed=3, name="rq_tiny"), seed=3, rounding=rounding)
    acts = [la.activation for la in m.layers[:2]]
    assert any(((a.shift > 0) if rounding == "tflite" else (a.shift < 32)).any()  # type: ignore[union-attr]
               for a in acts)
    return m


def cnn(rounding: str = "half_even") -> Model:
    """int8 pair windows (four positions a pass, 63 positions: groups of 4, 2 and 1),
    depthwise, table windows, XNOR windows (bit frames in, from int8 pairs' bits), each
    requantized but the BIPOLAR one, a padded UINT8 input (pad code -128 as stored)."""
    m = random_cnn_model((3, 9, 7), "UINT8", [
        {"conv": 16, "k": 3, "pad": 1, "w": "INT8", "act": "UINT8"},
        {"conv": 16, "k": 3, "pad": 1, "depthwise": True, "w": "INT4", "act": "INT8"},
        {"pool": 3, "stride": 2, "pad": 1},
        {"conv": 20, "k": 1, "w": "BIPOLAR", "act": "INT4"},
        {"conv": 12, "k": 3, "pad": 1, "w": "INT8", "act": "BIPOLAR"},
        {"conv": 10, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "INT8"},
        {"dense": 5, "w": "INT8"}], seed=3, name="rq_cnn")
    return requantize_hidden(m, seed=4, rounding=rounding)


def test_models_take_every_form() -> None:
    assert forms(mlp().layers) == ["Requant", "Requant", "Thresholds", "Requant", "NoneType"]
    m = cnn()
    assert forms(m.layers) == ["Requant", "Requant", "NoneType", "Requant", "Thresholds",
                               "Requant", "NoneType"]
    kernels = [getattr(lp, "kernel", "") for lp in fw.plan(m).layers]
    assert kernels == ["int8_pairs", "depthwise", "", "bipolar_table", "int8_pairs", "xnor",
                       "int8_pairs"]
    assert fw.plan(m).layers[0].window.requant is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("build", "target"), [
    pytest.param(cnn, "host", marks=pytest.mark.slow),
    pytest.param(mlp, "host", marks=pytest.mark.slow),
    pytest.param(mlp, "rv32", marks=rv32), pytest.param(cnn, "rv32", marks=rv32),
    pytest.param(tiny, "rv32", marks=rv32)])
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_model_equals_golden(tmp_path: Path, build: Callable[[str], Model], target: str,
                             rounding: str) -> None:
    m = build(rounding)
    codes = random_codes(m, 10, seed=5)
    acc = fw.run(m, tmp_path, codes, target=target, sanitize=target == "host")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@pytest.mark.slow  # test_requant's check runs it on both targets (5 samples) in `make test`
@pytest.mark.parametrize("target", ["host", pytest.param("rv32", marks=rv32)])
def test_brevitas_w8a8_equals_golden(tmp_path: Path, w8a8_onnx: Path,
                                     target: str) -> None:
    """Brevitas' w8a8 MLP lowered with requantization (float scales, batch norm)."""
    from flow.lower import lower

    m = lower(w8a8_onnx, activation="requant")
    assert forms(m.layers) == ["Requant", "Requant", "NoneType"]
    codes = random_codes(m, 30, seed=6)
    acc = fw.run(m, tmp_path, codes, target=target, sanitize=target == "host")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))
    sizes = fw.size_report(fw.plan(m), "esp32")
    # half_even per channel: the int32 multiplier, the int8 shift and the int64 bias
    assert sizes["layers"][0]["threshold_bytes"] == 13 * m.layers[0].out_features
