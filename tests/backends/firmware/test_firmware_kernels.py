"""The firmware's C kernels against numpy, one layer at a time: random shapes with word and
row-block tails, extreme weights and inputs, thresholds at the accumulator's ends. Each test
writes one C harness holding many cases and their expected outputs, built with warnings as
errors (host: with sanitizers, portable and builtin popcount; rv32: under QEMU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow.backends import firmware as fw
from flow.datatypes import dtype
from flow.ir import DenseLayer
from tests.helpers.firmware import (
    HAVE_RV32,
    kernel_harness,
    make_layer,
    run_harness,
    rv32,
)

SHAPES = [(1, 1), (31, 5), (32, 4), (33, 9), (64, 32), (95, 33), (130, 7), (784, 3)]
COMBOS = [  # input, weights, output (None: accumulators)
    ("BIPOLAR", "BIPOLAR", "BIPOLAR"), ("BIPOLAR", "BIPOLAR", None),
    ("BIPOLAR", "BIPOLAR", "UINT2"), ("UINT8", "BIPOLAR", "BIPOLAR"),
    ("INT8", "BIPOLAR", None), ("INT8", "INT8", "INT4"), ("UINT8", "INT8", None),
    ("INT4", "UINT8", "UINT8"), ("UINT8", "UINT8", None), ("INT8", "INT4", "BIPOLAR"),
    ("UINT3", "INT3", None), ("INT8", "TERNARY", "TERNARY"), ("UINT8", "INT2", None),
    ("INT2", "UINT1", "INT8"), ("TERNARY", "UINT5", None),
    # BIPOLAR weights: bit-serial on inputs of 1-2 bits as stored, tables on wider ones
    ("TERNARY", "BIPOLAR", "UINT2"), ("INT3", "BIPOLAR", None),
    # BIPOLAR inputs to the int8 kernels read int8 -1/+1, not bits
    ("BIPOLAR", "INT8", "BIPOLAR"), ("BIPOLAR", "UINT8", None), ("BIPOLAR", "INT4", "INT4"),
    ("BIPOLAR", "INT2", "BIPOLAR"), ("BIPOLAR", "TERNARY", None),
]


def layer_set(seed: int, shapes: list[tuple[int, int]]) -> list[DenseLayer]:
    rng = np.random.default_rng(seed)
    layers = []
    for c, (x_t, w_t, out_t) in enumerate(COMBOS):
        for s, (n_in, n_out) in enumerate(shapes):
            layers.append(make_layer(rng, n_in, n_out, x_t, w_t, out_t,
                                     extreme=(c + s) % 3 == 0))
    return layers


FAST_SHAPES = [(1, 1), (33, 9), (95, 33), (784, 3)]
# the bit-sliced kernel's (qnn_dense_xnor_sliced): blocks of 32 channels at least 2/3 full
SLICED_SHAPES = [(1, 22), (33, 32), (95, 45), (784, 64)]
SLICED_LONG_SHAPES = [(4065, 27), (8200, 60)]  # counts added up every 127 words


def sliced_layers(seed: int, shapes: list[tuple[int, int]]) -> list[DenseLayer]:
    rng = np.random.default_rng(seed)
    layers = [make_layer(rng, n_in, n_out, "BIPOLAR", "BIPOLAR", "BIPOLAR", extreme=k % 2 == 1)
              for k, (n_in, n_out) in enumerate(shapes)]
    assert {fw.plan_layer(0, la, bits_out=True).kernel for la in layers} == {"xnor_sliced"}
    return layers


def test_xnor_sliced_choice() -> None:
    """Bit-sliced where the outputs are bits by one threshold and the blocks of 32 channels
    at least 2/3 full; row by row otherwise."""
    rng = np.random.default_rng(5)
    for n_out, bits_out, out_t, kernel in [(22, True, "BIPOLAR", "xnor_sliced"),
                                            (21, True, "BIPOLAR", "xnor"),
                                            (64, True, "BIPOLAR", "xnor_sliced"),
                                            (42, True, "BIPOLAR", "xnor"),
                                            (43, True, "BIPOLAR", "xnor_sliced"),
                                            (64, False, "BIPOLAR", "xnor"),
                                            (64, False, "UINT2", "xnor"),
                                            (64, False, None, "xnor")]:
        layer = make_layer(rng, 40, n_out, "BIPOLAR", "BIPOLAR", out_t)
        assert fw.plan_layer(0, layer, bits_out=bits_out).kernel == kernel, n_out


@pytest.mark.slow
def test_xnor_sliced_long_rows(tmp_path: Path) -> None:
    """Rows of more than 4064 inputs, host (sanitizers) and RV32."""
    src = kernel_harness(sliced_layers(7, SLICED_LONG_SHAPES), np.random.default_rng(8))
    run_harness(src, tmp_path, "host", fw.SANITIZE)
    if HAVE_RV32:
        run_harness(src, tmp_path, "rv32", [])




@pytest.mark.parametrize("popcount", ["portable", "builtin"])
def test_kernels_host(tmp_path: Path, popcount: str) -> None:
    """Every kernel and output kind on the host with ASan/UBSan; the builtin variant uses
    the POPCNT instruction (-mpopcnt), the portable one the SWAR path; the bit-sliced
    kernel's word and block tails, thresholds past both ends."""
    flags = fw.SANITIZE + (["-DQNN_PORTABLE_POPCOUNT"] if popcount == "portable"
                           else ["-mpopcnt"])
    rng = np.random.default_rng(1)
    layers = layer_set(0, FAST_SHAPES) + sliced_layers(6, SLICED_SHAPES)
    run_harness(kernel_harness(layers, rng), tmp_path, "host", flags)


@rv32
def test_kernels_rv32(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    layers = layer_set(3, FAST_SHAPES) + sliced_layers(9, SLICED_SHAPES)
    run_harness(kernel_harness(layers, rng), tmp_path, "rv32", [])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kernels_sweep(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    src = kernel_harness(layer_set(10 + seed, SHAPES), rng)
    run_harness(src, tmp_path, "host", fw.SANITIZE + ["-DQNN_PORTABLE_POPCOUNT"])
    if HAVE_RV32:
        run_harness(src, tmp_path, "rv32", [])


INT8_SHAPES = [(1, 1), (2, 8), (3, 7), (17, 9), (64, 16), (255, 13), (512, 17)]
INT8_COMBOS = [("INT8", "INT8", None), ("UINT8", "INT8", "INT8"), ("INT8", "UINT8", None),
               ("UINT8", "UINT8", "BIPOLAR")]


def int8_weights(rng: np.random.Generator, pattern: str, lo: int, shape: tuple[int, int]
                 ) -> np.ndarray:
    """int8-stored weights (lo = the type's minimum, stored as -128) at their ends: all
    -128 (every pair (-128, -128)), -127 / +127 alternating, random with (-128, -128) pairs
    planted, or random."""
    w = rng.integers(lo, lo + 256, size=shape)
    if pattern == "min":
        w[:] = lo
    elif pattern == "pm127":
        w = np.where((np.arange(shape[1]) + np.arange(shape[0])[:, None]) % 2, lo + 1,
                     lo + 255)
    elif pattern == "planted":
        for o in range(shape[0]):
            j = 2 * rng.integers(0, max(shape[1] // 2, 1))
            w[o, j: j + 2] = lo
    return w


def int8_layers(seed: int) -> list[DenseLayer]:
    rng = np.random.default_rng(seed)
    layers = []
    for x_t, w_t, out_t in INT8_COMBOS:
        for n_in, n_out in INT8_SHAPES:
            for pattern in ("min", "pm127", "planted", "random"):
                w = int8_weights(rng, pattern, dtype(w_t).min, (n_out, n_in))
                layers.append(make_layer(rng, n_in, n_out, x_t, w_t, out_t, weights=w))
    return layers


def test_int8_kernels_host(tmp_path: Path) -> None:
    """qnn_dense_int8_pairs (and the compact qnn_dense_int8) at the ends of int8: every
    weight and input -128 (D = -32768, the pair's bound), +-127, planted (-128, -128)
    pairs, odd `in`, rows beyond the 8-row blocks; INT8 / UINT8 inputs and weights."""
    layers = int8_layers(5)
    assert {fw.plan_layer(0, t).kernel for t in layers} == {"int8_pairs"}
    run_harness(kernel_harness(layers, np.random.default_rng(6)), tmp_path, "host", fw.SANITIZE)


@rv32
def test_int8_kernels_rv32(tmp_path: Path) -> None:
    run_harness(kernel_harness(int8_layers(7), np.random.default_rng(8)), tmp_path, "rv32", [])


def pair_dot(words: np.ndarray, x: np.ndarray) -> np.ndarray:
    """numpy twin of the kernel's pair_dot: (int32)(A * X + 2^15 mod 2^32) >> 16."""
    p = words.astype(np.uint32) * x.astype(np.uint32) + np.uint32(0x8000)
    return p.view(np.int32) >> 16


def test_int8_pair_algebra() -> None:
    """Every int8 weight pair (a, b) against inputs (c, d) at the corners of int8 (D is
    bilinear: its extremes lie there) and at random: the packed multiply gives
    -(a*c + b*d) exactly. Without the negation, a = b = c = d = -128 does not."""
    a, b = (v.reshape(-1) for v in np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)))
    w = np.stack([a, b], axis=1)  # 65536 "rows" of one pair
    words = fw.pair_words(w)[:, 0]
    assert fw.pairs_fit(w, -128, 127) is None
    rng = np.random.default_rng(9)
    corners = [-128, -127, -1, 0, 1, 126, 127]
    cds = [(c, d) for c in corners for d in corners] + [tuple(v) for v in
                                                       rng.integers(-128, 128, (20, 2))]
    for c, d in cds:
        x = np.int64(c) + np.int64(d) * 65536
        np.testing.assert_array_equal(pair_dot(words, np.full_like(words, x & 0xFFFFFFFF)),
                                      -(a * c + b * d), err_msg=f"c={c} d={d}")
    plain = np.array([-128 * 65536 - 128], np.int64)  # a = b = -128, unnegated
    x = np.array([(-128 - 128 * 65536) & 0xFFFFFFFF])  # c = d = -128
    assert pair_dot(plain, x)[0] == -32768  # a*c + b*d = +32768 wraps


def test_int8_kernel_choice() -> None:
    """int8 weights get qnn_dense_int8_pairs with its layout and scratch; pairs_fit names
    the first pair outside int16; a model whose pairs overflow the app partition goes back
    to 1 byte per weight for its biggest layers only, and says why."""
    rng = np.random.default_rng(10)
    layer = make_layer(rng, 5, 11, "INT8", "INT8", None)
    lp = fw.plan_layer(0, layer)
    assert lp.kernel == "int8_pairs" and lp.weights.dtype == np.int32 and lp.weight_bits == 16
    assert lp.scratch_bytes == 4 * 3 and "two MACs" in lp.why
    words = fw.pair_words(layer.weights)  # [11, 3]
    np.testing.assert_array_equal(words[:, 0], -(layer.weights[:, 0] * 65536
                                                 + layer.weights[:, 1]))
    np.testing.assert_array_equal(words[:, 2], -layer.weights[:, 4] * 65536)  # b = 0 pad
    np.testing.assert_array_equal(lp.weights[:24].reshape(3, 8), words[:8].T)  # block
    np.testing.assert_array_equal(lp.weights[24:], words[8:].reshape(-1))  # tail rows
    lc = fw.plan_layer(0, layer, compact=True)
    assert lc.kernel == "int8" and lc.weights.dtype == np.int8 and lc.scratch_bytes == 0
    assert fw.pairs_fit(np.full((2, 4), -128), -128, 127) is None
    why = fw.pairs_fit(np.array([[0, 0, -128, -128]]), -129, 127)
    assert why is not None and why.startswith("row 0, inputs 2 and 3:"), why
    assert "[-33024, 32512]" in why, why
    from flow.synthetic import random_model

    big = random_model([1500, 1400, 100], ["INT8", "INT8"], ["INT8"], "INT8")
    p = fw.plan(big)
    assert [lp.kernel for lp in p.layers] == ["int8", "int8_pairs"]
    assert "app partition" in p.layers[0].why
    assert sum(lp.weight_bytes + lp.threshold_bytes + lp.bias_bytes
               for lp in p.layers) <= fw.APP_PARTITION
    # the pairs layer's packed inputs after its input (the int8 layer's 1400 outputs)
    assert p.arena == 4 * 700 + 1400 and p.buffers == [1400] and p.scratch[1] == 1400


def table_layers(seed: int) -> list[DenseLayer]:
    """BIPOLAR weights on 8-bit inputs for every row length of 1 to 12 groups of 4 (the
    kernel's unrolled cases and the padded loop) and a long row, output blocks around 32."""
    rng = np.random.default_rng(seed)
    outs = [None, "BIPOLAR", "UINT2", "INT8"]
    return [make_layer(rng, n_in, [1, 7, 32, 33, 40][n_in % 5], ["UINT8", "INT8"][n_in % 2],
                       "BIPOLAR", outs[n_in % 4], extreme=n_in % 3 == 0)
            for n_in in [*range(1, 49), 300]]


@pytest.mark.parametrize("target", ["host", "rv32"])
def test_bipolar_table_kernel(tmp_path: Path, target: str) -> None:
    """qnn_dense_bipolar_table against numpy on every unrolled row length, padded rows,
    extreme inputs and weights, all output kinds; its index bytes against a bit-by-bit
    reading of the weights."""
    if target == "rv32" and not HAVE_RV32:
        pytest.skip("riscv64-unknown-elf-gcc / QEMU missing")
    layers = table_layers(11 if target == "host" else 12)
    assert {fw.plan_layer(0, t).kernel for t in layers} == {"bipolar_table"}
    w = layers[9].weights  # 10 inputs: 3 groups, the last one of 2 inputs
    idx = fw.plan_layer(0, layers[9]).weights
    assert idx.shape == (w.shape[0], 3) and idx.dtype == np.uint8
    for o in range(w.shape[0]):
        for g in range(3):
            bits = [int(w[o, 4 * g + k] > 0) if 4 * g + k < 10 else 0 for k in range(4)]
            assert idx[o, g] == 2 * sum(b << k for k, b in enumerate(bits))
    assert fw.plan_layer(0, layers[-1]).weights.shape[1] == 76  # 75 groups padded to 4
    run_harness(kernel_harness(layers, np.random.default_rng(13)), tmp_path, target,
                fw.SANITIZE if target == "host" else [])


def test_threshold_count_and_edges(tmp_path: Path) -> None:
    """Binary search against numpy on duplicates and INT32 extremes; bipolar packing with
    word tails; UINT8 storage; argmax picks the first maximum."""
    rng = np.random.default_rng(4)
    cases = []
    lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>',
             '#include "qnn.h"', '#include "qnn_popcount.h"', ""]
    checks = []
    for k, n in enumerate([1, 2, 3, 7, 15, 16, 255]):
        t = np.sort(rng.integers(-5, 5, size=n) * 1000)
        t[0] = -(2**31)
        if n > 2:
            t[-1] = 2**31 - 1
        accs = np.array([-(2**31), 2**31 - 1, 0, *t[: min(n, 8)], *(t[: min(n, 8)] - 1)])
        accs = np.clip(accs, -(2**31), 2**31 - 1)
        want = (t[None, :] <= accs[:, None]).sum(axis=1)
        lines.append(fw.c_array("int32_t", f"t{k}", t))
        lines.append(fw.c_array("int32_t", f"a{k}", accs))
        lines.append(fw.c_array("uint32_t", f"c{k}", want))
        checks.append(f"    for (i = 0; i < {len(accs)}; i++)\n"
                      f"        bad += (qnn_threshold_count(t{k}, {n}, a{k}[i]) != c{k}[i]) +\n"
                      f"               (qnn_threshold_count_linear(t{k}, {n}, a{k}[i]) != c{k}[i])"
                      f" + (qnn_threshold_count_binary(t{k}, {n}, a{k}[i]) != c{k}[i]);")
        cases.append(n)
    for k, n in enumerate([1, 31, 32, 33, 100]):
        x = rng.choice([-1, 1], size=n)
        lines.append(fw.c_array("int8_t", f"p{k}", x))
        lines.append(fw.c_array("uint32_t", f"pw{k}", fw.pack_bits(x[None, :])[0]))
        checks.append(f"    memset(bits, 0xAA, sizeof bits);\n"
                      f"    qnn_pack_bipolar(p{k}, {n}, bits);\n"
                      f"    bad += memcmp(bits, pw{k}, sizeof pw{k}) != 0;")
    words = rng.integers(0, 2**32, size=64, dtype=np.uint64)
    words[:3] = [0, 2**32 - 1, 0x80000001]
    lines.append(fw.c_array("uint32_t", "pc", words))
    lines.append(fw.c_array("uint32_t", "pcn", [bin(int(v)).count("1") for v in words]))
    checks.append("    for (i = 0; i < 64; i++)\n"
                  "        bad += qnn_popcount32_portable(pc[i]) != pcn[i];")
    lines.append("static const uint8_t u8[4] = {0, 127, 128, 255};")
    lines.append("static const int8_t s8[4] = {-128, -1, 0, 127};")
    lines.append("static const int32_t v[5] = {-3, 7, 2, 7, -(2147483647 - 1)};")
    checks.append("    qnn_uint8_to_storage(u8, 4, got8);\n"
                  "    bad += memcmp(got8, s8, 4) != 0;\n"
                  "    bad += qnn_argmax_i32(v, 5) != 1;")
    lines.append("int main(void)\n{\n    uint32_t bits[8], i;\n    int8_t got8[4];\n"
                 "    int bad = 0;\n    (void)i;")
    lines += checks
    lines.append('    printf("kernel cases failed: %d\\n", bad);\n    exit(bad != 0);\n}\n')
    run_harness("\n".join(lines), tmp_path, "host", fw.SANITIZE)
