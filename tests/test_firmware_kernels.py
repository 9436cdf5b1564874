"""The firmware's C kernels against numpy, one layer at a time: random shapes with word and
row-block tails, extreme weights and inputs, thresholds at the accumulator's ends. Each test
writes one C harness holding many cases and their expected outputs, built with warnings as
errors (host: with sanitizers, portable and builtin popcount; rv32: under QEMU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flow.backends import firmware as fw
from flow.datatypes import dtype
from flow.ir import DenseLayer, Thresholds, accumulator_bounds
from flow.synthetic import activation_for, random_values

HAVE_RV32 = all(shutil.which(t) for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"))
rv32 = pytest.mark.skipif(not HAVE_RV32, reason="riscv64-unknown-elf-gcc / QEMU missing")


def make_layer(rng: np.random.Generator, n_in: int, n_out: int, x_t: str, w_t: str,
               out_t: str | None, extreme: bool = False) -> DenseLayer:
    xt, wt = dtype(x_t), dtype(w_t)
    w = random_values(rng, wt, (n_out, n_in))
    if extreme:  # the largest accumulators: every weight at its most negative / positive
        w[: n_out // 2] = wt.min
        w[n_out // 2:] = wt.max
    lo, hi = accumulator_bounds(w, xt.min, xt.max)
    act = None
    if out_t is not None:
        ot = dtype(out_t)
        base, step, k = activation_for(ot)
        t = np.sort(rng.integers(lo.min() - 2, hi.max() + 3, size=(n_out, k)), axis=1)
        t[0, :] = lo.min()  # reached by every input
        if n_out > 1:
            t[1, -1] = hi.max() + 1  # reached by none
        act = Thresholds(values=t, base=base, step=step, out_dtype=ot)
    return DenseLayer(name="t", source="test", in_features=n_in, out_features=n_out,
                      input_dtype=xt, weight_dtype=wt, weights=w, acc_min=int(lo.min()),
                      acc_max=int(hi.max()), activation=act)


def reference(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    """numpy: the layer's output as the kernel stores it."""
    acc = layer.weights.astype(np.int64) @ x.astype(np.int64)
    act = layer.activation
    if act is None:
        return acc.astype("<i4")
    y = act.base + act.step * (acc[:, None] >= act.values).sum(axis=1)
    if act.out_dtype.is_bipolar:
        return fw.pack_bits(y[None, :])[0]
    return (y - fw.storage_offset(act.out_dtype)).astype(np.int8)


def stored_input(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    if layer.input_dtype.is_bipolar:
        return fw.pack_bits(x[None, :])[0]
    return (x - fw.storage_offset(layer.input_dtype)).astype(np.int8)


CTYPE = {np.dtype("<u4"): "uint32_t", np.dtype("int8"): "int8_t", np.dtype("<i4"): "int32_t"}


def harness(layers: list[DenseLayer], rng: np.random.Generator) -> str:
    """C source running every layer on a random input (and, with two or more samples, on
    all-min and all-max inputs) and comparing with numpy's result."""
    body, calls = ['#include <stdio.h>', '#include <stdlib.h>', '#include <string.h>',
                   '#include "qnn.h"', ""], []
    for k, layer in enumerate(layers):
        lp = fw.plan_layer(k, layer, layer.activation is None)
        body.append(fw.layer_c(lp, f"layer{k}"))
        t = layer.input_dtype
        xs = [random_values(rng, t, (layer.in_features,)),
              np.full(layer.in_features, t.min if not t.is_bipolar else -1),
              np.full(layer.in_features, t.max)]
        for s, x in enumerate(xs):
            xin, want = stored_input(layer, x), reference(layer, x)
            body.append(fw.c_array(CTYPE[xin.dtype], f"x{k}_{s}", xin))
            body.append(fw.c_array(CTYPE[want.dtype], f"want{k}_{s}", want))
            cast = "const uint32_t *" if lp.kernel == "xnor" else "const int8_t *"
            scratch = ", scratch" if lp.kernel == "bipolar_weights" else ""
            calls.append(f"    memset(y, 0x55, sizeof y);\n"
                         f"    qnn_dense_{lp.kernel}(&layer{k}, ({cast})x{k}_{s}, y{scratch});\n"
                         f"    if (memcmp(y, want{k}_{s}, sizeof want{k}_{s})) {{\n"
                         f'        printf("case {k}.{s} ({lp.kernel}) differs\\n");\n'
                         f"        bad++;\n    }}")
    body.append("int main(void)\n{\n    static int32_t y[4096];\n"
                "    static uint32_t scratch[8 * 64];\n    int bad = 0;")
    body += calls
    body.append('    printf("kernel cases failed: %d\\n", bad);\n    exit(bad != 0);\n}\n')
    return "\n".join(body)


def run_harness(src: str, tmp: Path, target: str, flags: list[str]) -> None:
    (tmp / "harness.c").write_text(src)
    runtime = [f for f in fw.runtime_sources() if f.suffix == ".c"]
    exe = fw.compile_program([tmp / "harness.c", *runtime], tmp / "harness.elf", target,
                             [f"-I{fw.RUNTIME_DIR}", *flags])
    out = fw.run_program(exe, target, tmp, timeout=300)
    assert "kernel cases failed: 0" in out, out


SHAPES = [(1, 1), (31, 5), (32, 4), (33, 9), (64, 32), (95, 33), (130, 7), (784, 3)]
COMBOS = [  # input, weights, output (None: accumulators)
    ("BIPOLAR", "BIPOLAR", "BIPOLAR"), ("BIPOLAR", "BIPOLAR", None),
    ("BIPOLAR", "BIPOLAR", "UINT2"), ("UINT8", "BIPOLAR", "BIPOLAR"),
    ("INT8", "BIPOLAR", None), ("INT8", "INT8", "INT4"), ("UINT8", "INT8", None),
    ("INT4", "UINT8", "UINT8"), ("UINT8", "UINT8", None), ("INT8", "INT4", "BIPOLAR"),
    ("UINT3", "INT3", None), ("INT8", "TERNARY", "TERNARY"), ("UINT8", "INT2", None),
    ("INT2", "UINT1", "INT8"), ("TERNARY", "UINT5", None),
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


@pytest.mark.parametrize("popcount", ["portable", "builtin"])
def test_kernels_host(tmp_path: Path, popcount: str) -> None:
    """Every kernel and output kind on the host with ASan/UBSan; the builtin variant uses
    the POPCNT instruction (-mpopcnt), the portable one the SWAR path."""
    flags = fw.SANITIZE + (["-DQNN_PORTABLE_POPCOUNT"] if popcount == "portable"
                           else ["-mpopcnt"])
    rng = np.random.default_rng(1)
    run_harness(harness(layer_set(0, FAST_SHAPES), rng), tmp_path, "host", flags)


@rv32
def test_kernels_rv32(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    run_harness(harness(layer_set(3, FAST_SHAPES), rng), tmp_path, "rv32", [])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kernels_sweep(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    src = harness(layer_set(10 + seed, SHAPES), rng)
    run_harness(src, tmp_path, "host", fw.SANITIZE + ["-DQNN_PORTABLE_POPCOUNT"])
    if HAVE_RV32:
        run_harness(src, tmp_path, "rv32", [])


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
