"""Firmware test helpers: the RV32 tools' presence, the C harnesses of
firmware/templates/harness/ (dense kernel cases built here; conv cases by their tests) and
their run, numpy references of what the kernels store, and synthetic MLPs to build."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow.backends import firmware as fw
from flow.datatypes import dtype
from flow.golden.requant import requantize
from flow.ir import Conv2dLayer, DenseLayer, MaxPoolLayer, Model, Requant, Thresholds, accumulator_bounds
from flow.resources import fill_template
from flow.synthetic import activation_for, random_codes, random_model, random_values

HAVE_RV32 = all(shutil.which(t) for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"))
rv32 = pytest.mark.skipif(not HAVE_RV32, reason="riscv64-unknown-elf-gcc / QEMU missing")


def make_layer(rng: np.random.Generator, n_in: int, n_out: int, x_t: str, w_t: str,
               out_t: str | None, extreme: bool = False,
               weights: np.ndarray | None = None) -> DenseLayer:
    xt, wt = dtype(x_t), dtype(w_t)
    w = random_values(rng, wt, (n_out, n_in)) if weights is None else weights
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


def reference(layer: DenseLayer, x: np.ndarray, bits_out: bool = False) -> np.ndarray:
    """numpy: the layer's output as the kernel stores it (BIPOLAR as bits with bits_out,
    for a next XNOR layer, else as int8 -1/+1; requantized codes by golden's requantize)."""
    acc = layer.weights.astype(np.int64) @ x.astype(np.int64)
    act = layer.activation
    if act is None:
        return acc.astype("<i4")
    if isinstance(act, Requant):
        return (requantize(acc, act) - fw.storage_offset(act.out_dtype)).astype(np.int8)
    y = act.base + act.step * (acc[:, None] >= act.values).sum(axis=1)
    if bits_out:
        return fw.pack_bits(y[None, :])[0]
    return (y - fw.storage_offset(act.out_dtype)).astype(np.int8)


def stored_input(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    """The input as the layer's kernel reads it: bits for XNOR, int8 for every other."""
    if layer.is_xnor:
        return fw.pack_bits(x[None, :])[0]
    return (x - fw.storage_offset(layer.input_dtype)).astype(np.int8)


CTYPE = {np.dtype("<u4"): "uint32_t", np.dtype("int8"): "int8_t", np.dtype("<i4"): "int32_t"}
KERNELS = ["xnor", "bipolar_weights", "int8_pairs", "int8", "packed", "bipolar_table",
           "xnor_sliced"]  # run_case


def kernel_harness(layers: list[DenseLayer], rng: np.random.Generator) -> str:
    """C source running every layer on a random input and on all-min, all-max and
    alternating min/max inputs, comparing with numpy's result. int8 weights run through
    both qnn_dense_int8_pairs and the compact qnn_dense_int8; BIPOLAR outputs are stored
    both as int8 -1/+1 and as bits (for a next XNOR layer): the cases of the template
    firmware/templates/harness/kernel_cases.c."""
    body: list[str] = []
    cases: list[str] = []
    names: list[str] = []
    for k, layer in enumerate(layers):
        storages = [False, True] if layer.out_dtype.is_bipolar else [False]
        plans = []  # (plan, BIPOLAR outputs as bits); the index names the C arrays
        for compact in (False, True):
            for bits_out in storages:
                lp = fw.plan_layer(4 * k + len(plans), layer, compact, bits_out)
                if not compact or plans[0][0].kernel == "int8_pairs":
                    plans.append((lp, bits_out))
        for v, (lp, _) in enumerate(plans):
            body.append(lp.constants_c(f"layer{k}_{v}"))
        t = layer.input_dtype
        lo = t.min if not t.is_bipolar else -1
        xs = [random_values(rng, t, (layer.in_features,)),
              np.full(layer.in_features, lo), np.full(layer.in_features, t.max),
              np.where(np.arange(layer.in_features) % 2, t.max, lo)]
        for s, x in enumerate(xs):
            xin = stored_input(layer, x)
            body.append(fw.c_array(CTYPE[xin.dtype], f"x{k}_{s}", xin))
            for b in storages:
                want = reference(layer, x, b)
                body.append(fw.c_array(CTYPE[want.dtype], f"want{k}_{s}_{int(b)}", want))
            for v, (lp, b) in enumerate(plans):
                want = f"want{k}_{s}_{int(b)}"
                cases.append(f"    {{&layer{k}_{v}, x{k}_{s}, {want}, "
                             f"{KERNELS.index(lp.kernel)}, sizeof {want}}},")
                names.append(f'    "{k} ({lp.kernel}, {lp.out_kind}), input {s}",')
    return fill_template("firmware", "harness/kernel_cases.c", definitions="\n".join(body),
                         cases="\n".join(cases), names="\n".join(names))


def run_harness(src: str, tmp: Path, target: str, flags: list[str]) -> None:
    """Build a harness (firmware/templates/harness/: kernel, conv or add cases) with the runtime
    for `target`, run it, and require every case to pass."""
    (tmp / "harness.c").write_text(src)
    runtime = [f for f in fw.runtime_sources() if f.suffix == ".c"]
    exe = fw.compile_program([tmp / "harness.c", *runtime], tmp / "harness.elf", target,
                             [f"-I{fw.runtime_dir()}", *flags])
    out = fw.run_program(exe, target, tmp, timeout=300)
    assert re.search(r"\b(kernel|conv|add) cases failed: 0\b", out), out


def padded(layer: Conv2dLayer | MaxPoolLayer, x: np.ndarray, fill: int) -> np.ndarray:
    top, left, bottom, right = layer.pads
    return np.pad(x.reshape(layer.in_shape), ((top, bottom), (left, right), (0, 0)),
                  constant_values=fill)


def windows(layer: Conv2dLayer | MaxPoolLayer, xp: np.ndarray):  # noqa: ANN201 - a generator
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    oh, ow = layer.out_shape[:2]
    for oy in range(oh):
        for ox in range(ow):
            yield xp[oy * sh: oy * sh + kh, ox * sw: ox * sw + kw, :]


def conv_acc(layer: Conv2dLayer, x: np.ndarray) -> np.ndarray:
    """[positions, C_out] accumulators, window by window (padded taps: pad_value)."""
    xp = padded(layer, x, layer.pad_value)
    w = layer.weights.astype(np.int64)
    if layer.depthwise:
        return np.array([np.einsum("ijc,cij->c", win, w[..., 0])
                         for win in windows(layer, xp)])
    return np.array([w.reshape(len(w), -1) @ win.reshape(-1) for win in windows(layer, xp)])


def stored(v: np.ndarray, t: Any, as_bits: bool) -> np.ndarray:
    """[pixels, C] codes as the firmware stores them: bit frames or int8."""
    if as_bits:
        return fw.pack_bits(v).reshape(-1)
    return (v - fw.storage_offset(t)).astype(np.int8).reshape(-1)


# widths, weight types, hidden activation types, input type
MODELS: dict[str, tuple[list[int], list[str], list[str], str]] = {
    "w1a1": ([100, 64, 33, 10], ["BIPOLAR"] * 3, ["BIPOLAR"] * 2, "BIPOLAR"),
    "w1a1_u8in": ([70, 40, 10], ["BIPOLAR"] * 2, ["BIPOLAR"], "UINT8"),
    "w8a8": ([50, 23, 17, 5], ["INT8", "INT8", "INT8"], ["UINT8", "INT8"], "UINT8"),
    "w4a4": ([45, 30, 6], ["INT4", "UINT3"], ["UINT4"], "INT4"),
    "w2a2": ([37, 29, 7], ["TERNARY", "INT2"], ["TERNARY"], "UINT2"),
    "mixed": ([65, 33, 9, 4], ["UINT8", "BIPOLAR", "INT5"], ["BIPOLAR", "INT3"], "INT8"),
    # BIPOLAR activations read by multi-bit weights (int8 -1/+1, not bits): the model input
    # and a hidden layer into int8 pairs / packed INT4, UINT8 (w_offset) and TERNARY / INT2
    # weights, and XNOR -> int8 -1/+1 -> packed -> bits -> XNOR
    "bip_w8": ([40, 20, 5], ["INT8", "INT8"], ["BIPOLAR"], "BIPOLAR"),
    "bip_w4": ([40, 20, 5], ["INT4", "INT4"], ["BIPOLAR"], "BIPOLAR"),
    "bip_u8_w3": ([33, 17, 4], ["UINT8", "TERNARY"], ["BIPOLAR"], "BIPOLAR"),
    "bip_chain": ([70, 33, 20, 5], ["BIPOLAR", "INT2", "BIPOLAR"], ["BIPOLAR", "BIPOLAR"],
                  "BIPOLAR"),
    "bip_hidden_w2": ([45, 37, 6], ["INT8", "INT2"], ["BIPOLAR"], "INT8"),
}


def model_and_codes(name: str, n: int = 24, seed: int = 0) -> tuple[Model, np.ndarray]:
    widths, wt, at, it = MODELS[name]
    m = random_model(widths, wt, at, it, seed=seed, name=name)
    return m, random_codes(m, n, seed=seed + 1)
