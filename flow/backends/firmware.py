"""Firmware backend: C99 for ESP32-class MCUs, checked on the host and on RV32IMC in QEMU.

`generate` writes build_dir/firmware/, an ESP-IDF project: the example app (main/) and the
component components/qflow_model/ (the runtime kernels copied from the source tree's
firmware/, plus the per-model model.c/h and model_data.c/h: const packed weights and
thresholds, which land in flash, and one static arena for the activations). `run` builds
the same sources with a small runner program for the host (gcc, warnings as errors,
optional sanitizers) or for RV32IMC (riscv64-unknown-elf-gcc + picolibc, run by
qemu-system-riscv32 with semihosting file I/O and -icount, which also counts instructions).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden
from flow.atomic import replace_dir, write_json
from flow.datatypes import DataType
from flow.inputs import command_codes
from flow.ir import DenseLayer, Model, popcount_thresholds

log = logging.getLogger("qflow.firmware")

RUNTIME_DIR = Path(__file__).resolve().parents[2] / "firmware"
RUNNER = "qnn_runner.c"
COMPONENT = "qflow_model"
KB = 1024
# SRAM, static DRAM and flash per chip: on the ESP32 at most 160 KB of DRAM can hold static
# data (.data/.bss), the heap gets the rest, so a bigger arena is allocated at init
BUDGETS: dict[str, dict[str, int]] = {
    "esp32": {"sram": 520 * KB, "static_dram": 160 * KB, "flash": 4096 * KB},
    "esp32c3": {"sram": 400 * KB, "static_dram": 400 * KB, "flash": 4096 * KB},
    "esp32s3": {"sram": 512 * KB, "static_dram": 512 * KB, "flash": 4096 * KB},
}
# the example app's partition table gives the factory app this much of a 4 MB flash
APP_PARTITION = 0x3F0000
RV32_FLAGS = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs", "--oslib=semihost"]
# QEMU virt: RAM from 0x80000000; the low 4 MB play the flash (code, rodata), 1 MB above
# them the SRAM (data, bss, stack), so a weight in RAM shows in the memory map
RV32_FLASH, RV32_FLASH_SIZE = 0x80000000, 0x400000
RV32_RAM, RV32_RAM_SIZE = 0x80400000, 0x100000
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
CLOCK_MHZ = 160


class FirmwareError(ValueError):
    """A model the firmware cannot hold or run; the message names the layer or budget."""


# ---- planning ---------------------------------------------------------------------------


# How an activation is stored: as bits (1 for +1, 32 per word) where it feeds the XNOR
# kernel (BIPOLAR inputs x BIPOLAR weights), the only kernel that reads bits; as int8
# everywhere else, BIPOLAR as -1/+1 and UINT8 shifted down by 128 (storage_offset).


def storage_offset(t: DataType) -> int:
    """Value subtracted before storing an activation in int8 (only UINT8 needs it)."""
    return 128 if (not t.is_bipolar and t.max > 127) else 0


def buffer_bytes(n: int, as_bits: bool) -> int:
    """Arena bytes for n activations stored as bits or as int8, in whole 32-bit words."""
    return 4 * ((n + 31) // 32) if as_bits else 4 * ((n + 3) // 4)


@dataclass
class LayerPlan:
    index: int
    layer: DenseLayer
    kernel: str  # xnor | bipolar_weights | int8_pairs | int8 | packed
    weight_bits: int  # bits per stored weight (1 for bits, 16 for int8 pairs)
    weights: np.ndarray  # as stored: uint32 / int32 words, int8, or uint8 packed bytes
    thresholds: np.ndarray | None  # int32 [out, count]
    bias: np.ndarray | None  # int32 [out]
    w_offset: int
    base: int
    step: int
    out_kind: str  # ACC | INT8 | BITS
    in_bits: int  # bits of an input as stored
    in_signed: bool
    why: str = ""  # why this kernel (int8 weights: pairs or not)

    @property
    def scratch_bytes(self) -> int:
        """Bit planes of the inputs (qnn_dense_bipolar_weights) or the packed input pairs
        (qnn_dense_int8_pairs)."""
        if self.kernel == "bipolar_weights":
            return 4 * self.in_bits * ((self.layer.in_features + 31) // 32)
        if self.kernel == "int8_pairs":
            return 4 * ((self.layer.in_features + 1) // 2)
        return 0

    @property
    def macs(self) -> int:
        return self.layer.in_features * self.layer.out_features

    @property
    def weight_bytes(self) -> int:
        return int(self.weights.nbytes)

    @property
    def threshold_bytes(self) -> int:
        return 0 if self.thresholds is None else int(self.thresholds.nbytes)

    @property
    def bias_bytes(self) -> int:
        return 0 if self.bias is None else int(self.bias.nbytes)


def pack_bits(w: np.ndarray) -> np.ndarray:
    """BIPOLAR rows -> uint32 words, LSB first, 1 for +1, tail bits 0."""
    words = (w.shape[1] + 31) // 32
    b = np.packbits(w > 0, axis=1, bitorder="little")
    b = np.pad(b, ((0, 0), (0, 4 * words - b.shape[1])))
    return np.ascontiguousarray(b).view("<u4")


def pack_lowbit(w: np.ndarray, bits: int) -> np.ndarray:
    """Values 0 .. 2^bits - 1 -> `bits`-bit fields, LSB first, each row padded to whole
    bytes."""
    per = 8 // bits
    out, n = w.shape
    v = (w.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint8)
    v = np.pad(v, ((0, 0), (0, (-n) % per))).reshape(out, -1, per)
    shifts = (np.arange(per) * bits).astype(np.uint8)
    return (v << shifts).sum(axis=2, dtype=np.uint32).astype(np.uint8)


INT8_ROWS = 8  # QNN_INT8_ROWS in qnn.h
INT8_PAIR_ROWS = 8  # QNN_INT8_PAIR_ROWS in qnn.h


def interleave_rows(w: np.ndarray, rows: int = INT8_ROWS) -> np.ndarray:
    """Rows in blocks of `rows` interleaved by column, the rest row-major, flat (the layout
    of qnn_dense_int8 over weights and of qnn_dense_int8_pairs over weight pairs)."""
    full = w.shape[0] // rows * rows
    blocks = w[:full].reshape(-1, rows, w.shape[1]).transpose(0, 2, 1).reshape(-1)
    return np.concatenate([blocks, w[full:].reshape(-1)])


def _pairs(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) = (w[:, 0::2], w[:, 1::2]) in int64, an odd row padded with a zero weight."""
    w = np.pad(np.asarray(w, np.int64), ((0, 0), (0, w.shape[1] % 2)))
    return w[:, 0::2], w[:, 1::2]


def pair_words(w: np.ndarray) -> np.ndarray:
    """Stored int8 weights [out, in] -> qnn_dense_int8_pairs' words
    A = -(w[o][2j] * 2^16 + w[o][2j+1]), int32 [out, ceil(in/2)], before interleaving."""
    a, b = _pairs(w)
    return (-(a * 65536 + b)).astype(np.int32)


def pairs_fit(w: np.ndarray, x_lo: int, x_hi: int) -> str | None:
    """None when qnn_dense_int8_pairs is exact for stored weights w [out, in] and stored
    inputs in [x_lo, x_hi], else why not. Per pair (a, b) of a row and inputs (c, d) the
    multiply yields G + D * 2^16 with G = -b*c, D = -(a*c + b*d); the kernel recovers D
    when both lie in [-2^15, 2^15). Checked on the ranges these products reach: for any
    int8 weights and inputs they fit (D at most 32512, at least -32768)."""

    def span(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # of -v * x, x in [x_lo, x_hi]
        return np.minimum(-v * x_lo, -v * x_hi), np.maximum(-v * x_lo, -v * x_hi)

    (a_lo, a_hi), (b_lo, b_hi) = (span(v) for v in _pairs(w))
    for name, vlo, vhi in (("a*c + b*d", a_lo + b_lo, a_hi + b_hi), ("b*c", b_lo, b_hi)):
        bad = (vlo < -(2**15)) | (vhi >= 2**15)
        if bad.any():
            o, j = (int(k) for k in np.argwhere(bad)[0])
            return (f"row {o}, inputs {2 * j} and {2 * j + 1}: -({name}) reaches "
                    f"[{int(vlo[o, j])}, {int(vhi[o, j])}], outside int16 for inputs in "
                    f"[{x_lo}, {x_hi}]")
    return None


def weight_storage(t: DataType) -> tuple[int, int]:
    """(bits per stored weight, offset subtracted before storing) for a weight type."""
    if t.is_bipolar:
        return 1, 0
    for bits in (2, 4, 8):
        if -(2 ** (bits - 1)) <= t.min and t.max < 2 ** (bits - 1):
            return bits, 0
    return 8, 128  # UINT8: stored minus 128, added back as w_offset * sum(x)


def input_storage_bits(t: DataType, as_bits: bool = False) -> tuple[int, bool]:
    """(bits, signed) of an activation as stored: one unsigned bit when stored as bits,
    else its int8 value's range: UINT8 is shifted to signed, BIPOLAR's -1/+1 takes two
    signed bits."""
    if as_bits:
        return 1, False
    if storage_offset(t):
        return 8, True
    if t.is_bipolar:
        return 2, True
    return t.bits, t.signed


def plan_layer(i: int, layer: DenseLayer, last: bool, compact: bool = False,
               bits_out: bool = False) -> LayerPlan:
    """Kernel, stored arrays and constants of one layer. int8 weights go to
    qnn_dense_int8_pairs (2 bytes of flash per weight) unless `compact` asks for
    qnn_dense_int8 (1 byte per weight). The layer reads its inputs as
    bits when it is the XNOR kernel, as int8 otherwise; `bits_out` (the next layer is the
    XNOR kernel) stores its BIPOLAR outputs as bits, else they are stored as int8 -1/+1."""
    at = f"layer {i} ({layer.name}, from {layer.source})"
    acc_bits = layer.acc_dtype.bits
    if acc_bits > 32:
        raise FirmwareError(f"{at}: accumulator needs {acc_bits} bits, the firmware has 32")
    if layer.in_features > 0xFFFF or layer.out_features > 0xFFFF:
        raise FirmwareError(f"{at}: {layer.out_features} x {layer.in_features} exceeds 65535")
    for t in (layer.input_dtype, layer.weight_dtype):
        if not t.is_bipolar and t.bits > 8:
            raise FirmwareError(f"{at}: {t} has more than 8 bits")
    x_t, w = layer.input_dtype, layer.weights.astype(np.int64)
    bits, w_off = weight_storage(layer.weight_dtype)
    x_off = storage_offset(x_t)
    in_bits, in_signed = input_storage_bits(x_t, as_bits=layer.is_xnor)
    # the inputs' range as stored (int8 kernels; the XNOR kernel reads bits)
    x_lo, x_hi = x_t.min - x_off, x_t.max - x_off
    why = ""
    if layer.is_xnor:
        kernel, stored = "xnor", pack_bits(w)
    elif layer.weight_dtype.is_bipolar:
        kernel, stored = "bipolar_weights", pack_bits(w)
    elif bits == 8:
        # int8 storage keeps every pair inside the kernel's bound: asserted, not assumed
        unfit = pairs_fit(w - w_off, x_lo, x_hi)
        if unfit is not None:
            raise FirmwareError(f"{at}: int8 pairs: {unfit}")
        if not compact:
            kernel, stored = "int8_pairs", interleave_rows(pair_words(w - w_off), INT8_PAIR_ROWS)
            bits, why = 16, "two MACs per 32-bit multiply"
        else:
            kernel, stored = "int8", interleave_rows(w - w_off).astype(np.int8)
            why = "not pairs: 1 byte per weight so that the constants fit the app partition"
    else:  # fields hold w + 2^(bits-1), non-negative: the kernel needs no sign extension
        w_off = -(2 ** (bits - 1))
        kernel, stored = "packed", pack_lowbit(w - w_off, bits)
    # true acc = dot(w_s, x_s) + w_off * sum(x_s) + x_off * rowsum(w_s) + w_off * x_off * in
    bias = None
    if x_off:
        bias = x_off * (w - w_off).sum(axis=1) + w_off * x_off * layer.in_features
    if kernel == "bipolar_weights" and in_signed:
        # the bit-serial kernel sums u = x + 2^(b-1) over the +1 weights: take 2^(b-1) back
        # for each of them, twice as acc = 2 * plus - sum(x)
        bias = (0 if bias is None else bias) - 2**in_bits * (w > 0).sum(axis=1)
    # every partial sum must stay in int32 too: products are at most 2^14 in magnitude
    if 3 * layer.in_features * 2**14 >= 2**31:
        raise FirmwareError(f"{at}: {layer.in_features} inputs may overflow int32 partial sums")
    act = layer.activation
    if last or act is None:
        if act is not None:
            raise FirmwareError(f"{at}: the last layer must output accumulators")
        return LayerPlan(i, layer, kernel, bits, stored, None, _int32(bias, at), w_off, 0, 0,
                         "ACC", in_bits, in_signed, why)
    out_t = act.out_dtype
    if bits_out and not out_t.is_bipolar:
        raise FirmwareError(f"{at}: {out_t} outputs cannot be stored as bits")
    if layer.is_xnor:
        t = popcount_thresholds(layer)
        lo, hi = 0, layer.in_features + 1
    else:
        t = act.values.astype(np.int64)
        lo, hi = layer.acc_min, layer.acc_max + 1
    if hi > 2**31 - 1:
        raise FirmwareError(f"{at}: accumulator reaches INT32_MAX, no threshold above it")
    # beyond the reachable range, a threshold is always or never met: clip into int32
    t = np.clip(t, lo, hi)
    base = act.base - storage_offset(out_t)
    top = base + act.step * act.count
    if not (min(base, top) >= -(2**15) and max(base, top) < 2**15 and abs(act.step) < 2**15):
        raise FirmwareError(f"{at}: activation levels do not fit int16")
    if act.count > 0xFFFF:
        raise FirmwareError(f"{at}: {act.count} thresholds per channel")
    return LayerPlan(i, layer, kernel, bits, stored, t.astype(np.int32), _int32(bias, at),
                     w_off, base, act.step, "BITS" if bits_out else "INT8", in_bits,
                     in_signed, why)


def _int32(a: np.ndarray | None, at: str) -> np.ndarray | None:
    if a is None:
        return None
    if a.min() < -(2**31) or a.max() >= 2**31:
        raise FirmwareError(f"{at}: bias outside int32")
    return a.astype(np.int32)


@dataclass
class Plan:
    model: Model
    layers: list[LayerPlan]
    input_buffer: int  # arena bytes for converted inputs (0: layer 0 reads the caller's)
    buffers: list[int]  # bytes of each arena buffer, in order of use
    offsets: list[int]
    scratch: int  # offset of the kernels' scratch (after the buffers)
    arena: int

    @property
    def input_kind(self) -> str:
        return input_kind(self.model)


def input_kind(model: Model) -> str:
    """How qflow_model_run presents its input codes to the first layer: packed into bits
    (an XNOR first layer), shifted to int8 (UINT8) or as they are (int8 codes, BIPOLAR as
    -1/+1); the first two take an arena buffer."""
    if model.layers[0].is_xnor:
        return "bits"
    return "uint8" if storage_offset(model.input.out_dtype) else "direct"


def plan(model: Model) -> Plan:
    """Kernels, stored arrays and the arena for a model.

    Buffer k is written by stage k and read by stage k + 1 only, so buffers k and k + 2
    never live at once: even buffers sit at the arena's start, odd ones at its end, and the
    arena is the largest sum of two neighbours (the least any placement can do)."""
    model.validate(model.name)
    n = len(model.layers)
    # a BIPOLAR activation is stored as bits only where the XNOR kernel reads it
    bits_out = [i + 1 < n and model.layers[i + 1].is_xnor for i in range(n)]
    layers = [plan_layer(i, layer, i == n - 1, bits_out=bits_out[i])
              for i, layer in enumerate(model.layers)]
    # int8 pairs take 2 bytes per weight: where the constants would not fit the app
    # partition, the biggest such layers go back to 1 byte (qnn_dense_int8) until they do
    total = sum(lp.weight_bytes + lp.threshold_bytes + lp.bias_bytes for lp in layers)
    for lp in sorted(layers, key=lambda lp: -lp.weight_bytes):
        if total <= APP_PARTITION:
            break
        if lp.kernel == "int8_pairs":
            layers[lp.index] = plan_layer(lp.index, lp.layer, lp.index == n - 1, compact=True,
                                          bits_out=bits_out[lp.index])
            total -= lp.weight_bytes - layers[lp.index].weight_bytes
    sizes = []
    input_buffer = 0
    if input_kind(model) != "direct":
        input_buffer = buffer_bytes(model.input.features, input_kind(model) == "bits")
        sizes.append(input_buffer)
    sizes += [buffer_bytes(lp.layer.out_features, lp.out_kind == "BITS") for lp in layers[:-1]]
    chain = max([a + b for a, b in zip(sizes, sizes[1:], strict=False)] + sizes + [0])
    offsets = [0 if k % 2 == 0 else chain - s for k, s in enumerate(sizes)]
    scratch = max(lp.scratch_bytes for lp in layers)
    return Plan(model, layers, input_buffer, sizes, offsets, chain, chain + scratch)


# ---- C emission -------------------------------------------------------------------------


def c_literals(ctype: str, a: np.ndarray) -> list[str]:
    vals = [str(int(v)) for v in np.asarray(a).reshape(-1)]
    if ctype == "int32_t":  # INT32_MIN is not a literal in C
        vals = ["(-2147483647 - 1)" if v == "-2147483648" else v for v in vals]
    if ctype == "uint32_t":
        vals = [v + "u" for v in vals]
    return vals


def c_array(ctype: str, name: str, a: np.ndarray, per_line: int = 16) -> str:
    vals = c_literals(ctype, a)
    lines = [", ".join(vals[k:k + per_line]) for k in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines) or "0"
    return f"const {ctype} {name}[{max(len(vals), 1)}] = {{\n    {body}\n}};\n"


WEIGHT_CTYPE = {"xnor": "uint32_t", "bipolar_weights": "uint32_t", "int8": "int8_t",
                "int8_pairs": "int32_t", "packed": "uint8_t"}
SCRATCH_KERNELS = ("bipolar_weights", "int8_pairs")  # take a scratch argument


def layer_c(lp: LayerPlan, name: str) -> str:
    """C definitions of one layer's constants and its qnn_dense_t `name`."""
    i, layer = lp.index, lp.layer
    c = [f"/* {layer.name} (from {layer.source}): {layer.out_features} x {layer.in_features}, "
         f"{layer.weight_dtype} weights x {layer.input_dtype} inputs -> {layer.out_dtype}, "
         f"kernel qnn_dense_{lp.kernel} */",
         c_array(WEIGHT_CTYPE[lp.kernel], f"qflow_w{i}", lp.weights)]
    thr = bias = "0"
    if lp.thresholds is not None:
        c.append(c_array("int32_t", f"qflow_t{i}", lp.thresholds))
        thr = f"qflow_t{i}"
    if lp.bias is not None:
        c.append(c_array("int32_t", f"qflow_b{i}", lp.bias))
        bias = f"qflow_b{i}"
    count = 0 if lp.thresholds is None else lp.thresholds.shape[1]
    c.append(f"const qnn_dense_t {name} = {{\n"
             f"    qflow_w{i}, {thr}, {bias}, {lp.w_offset}, {layer.in_features}, "
             f"{layer.out_features}, {count},\n"
             f"    {lp.base}, {lp.step}, QNN_OUT_{lp.out_kind}, {lp.weight_bits}, {lp.in_bits}, "
             f"{int(lp.in_signed)}\n}};\n")
    return "\n".join(c)


def model_data_c(p: Plan) -> tuple[str, str]:
    h = ["/* Generated by qflow: the model's constants (flash). */",
         "#ifndef QFLOW_MODEL_DATA_H", "#define QFLOW_MODEL_DATA_H", "", '#include "qnn.h"', ""]
    c = ["/* Generated by qflow from the integer IR; weights and thresholds are const so that",
         " * the linker keeps them in flash (.rodata), never in RAM. */",
         '#include "model_data.h"', ""]
    for lp in p.layers:
        c.append(layer_c(lp, f"qflow_layer{lp.index}"))
        h.append(f"extern const qnn_dense_t qflow_layer{lp.index};")
    h += ["", "#endif", ""]
    return "\n".join(h), "\n".join(c)


def output_is_monotonic(model: Model) -> bool:
    """True when argmax of the accumulators is argmax of the outputs: one positive scale and
    one offset for all channels and only scalar add/sub/positive mul after them."""
    o = model.output
    if np.ptp(o.acc_offset) or np.ptp(o.acc_scale) or o.acc_scale[0] <= 0:
        return False
    for op in o.ops:
        v = np.asarray(op.value, np.float64).reshape(-1)
        if np.ptp(v) or (op.op in ("mul", "div") and v[0] <= 0):
            return False
    return True


def output_stage_c(model: Model) -> str:
    """qflow_model_logits: the IR's output stage in float32, in the golden model's order."""
    o = model.output
    c = len(o.acc_offset)
    lines = [c_array("int64_t", "acc_offset", o.acc_offset).replace("const", "static const"),
             f"static const double acc_scale[{c}] = {{"
             + ", ".join(repr(float(v)) for v in o.acc_scale) + "};"]
    body = ["        float y = (float)((double)(acc[k] - acc_offset[k]) * acc_scale[k]);"]
    sym = {"mul": "*", "div": "/", "add": "+", "sub": "-"}
    for j, op in enumerate(o.ops):
        v = np.broadcast_to(np.asarray(op.value, np.float32).reshape(-1), (c,))
        lines.append(f"static const float op{j}[{c}] = {{"
                     + ", ".join(f"{float(x)!r}f" for x in v) + "};")
        body.append(f"        y = y {sym[op.op]} op{j}[k];")
    return "\n".join(lines) + textwrap.dedent("""

        void qflow_model_logits(const int32_t *acc, float *logits)
        {
            int k;
            for (k = 0; k < QFLOW_OUT_FEATURES; k++) {
        %s
                logits[k] = y;
            }
        }
        """) % "\n".join(body)


def model_c(p: Plan) -> tuple[str, str]:
    m = p.model
    in_t = m.input.out_dtype
    in_ctype = "uint8_t" if not in_t.signed and not in_t.is_bipolar else "int8_t"
    bip = ", -1 or +1 each" if in_t.is_bipolar else ""
    stages = len(p.layers) + (1 if p.input_buffer else 0)
    heap = p.arena > BUDGETS["esp32"]["static_dram"]
    h = f"""/* Generated by qflow: {m.name}, {m.input.features} {in_t} inputs ->
 * {m.layers[-1].out_features} int32 accumulators. */
#ifndef QFLOW_MODEL_H
#define QFLOW_MODEL_H

#include <stdint.h>

#define QFLOW_IN_FEATURES {m.input.features}
#define QFLOW_OUT_FEATURES {m.layers[-1].out_features}
#define QFLOW_ARENA_BYTES {p.arena}
#define QFLOW_ARENA_ON_HEAP {int(heap)}
#define QFLOW_STAGES {stages}

/* input codes of the IR's input type ({in_t}){bip} */
typedef {in_ctype} qflow_input_t;

/* allocates the arena when it is too big for static DRAM; 0 on success */
int qflow_model_init(void);
/* one inference: input codes -> the last layer's accumulators (as flow.golden) */
void qflow_model_run(const qflow_input_t *in, int32_t *out);
/* the IR's output stage: accumulators -> the graph's float outputs */
void qflow_model_logits(const int32_t *acc, float *logits);
/* the predicted class */
int qflow_model_predict(const int32_t *acc);

#ifndef QFLOW_PROFILE
#define QFLOW_PROFILE 0
#endif
#if QFLOW_PROFILE
/* called with 0 before and with k + 1 after stage k of each inference */
void qflow_profile_mark(unsigned stage);
#define QFLOW_MARK(stage) qflow_profile_mark(stage)
#else
#define QFLOW_MARK(stage) ((void)0)
#endif

#endif
"""
    kind_in = {"xnor": "const uint32_t *"}
    src: list[str] = []
    stage = 0
    prev = "in" if not p.input_buffer else f"(arena + {p.offsets[0]})"
    if p.input_kind == "bits":
        src.append(f"    qnn_pack_bipolar(in, QFLOW_IN_FEATURES, (uint32_t *){prev});")
    elif p.input_kind == "uint8":
        src.append(f"    qnn_uint8_to_storage(in, QFLOW_IN_FEATURES, (int8_t *){prev});")
    if p.input_buffer:
        stage += 1
        src.append(f"    QFLOW_MARK({stage});")
    buf = 1 if p.input_buffer else 0
    for lp in p.layers:
        last = lp.index == len(p.layers) - 1
        dst = "out" if last else f"arena + {p.offsets[buf]}"
        cast = kind_in.get(lp.kernel, "const int8_t *")
        scratch = (f", (uint32_t *)(arena + {p.scratch})" if lp.kernel in SCRATCH_KERNELS
                   else "")
        src.append(f"    qnn_dense_{lp.kernel}(&qflow_layer{lp.index}, ({cast}){prev}, {dst}"
                   f"{scratch});")
        stage += 1
        src.append(f"    QFLOW_MARK({stage});")
        prev, buf = f"({dst})", buf + 1
    if not p.arena:
        arena_decl = "/* no arena: the only layer reads the caller's input */"
        init = "    return 0;"
    elif heap:
        arena_decl = "static uint8_t *arena;"
        init = ("    arena = (uint8_t *)malloc(QFLOW_ARENA_BYTES);\n"
                "    return arena ? 0 : -1;")
    else:
        arena_decl = ("/* uint32_t: word-aligned for the bit-packed buffers */\n"
                      "static uint32_t arena_words[(QFLOW_ARENA_BYTES + 3) / 4];\n"
                      "#define arena ((uint8_t *)arena_words)")
        init = "    return 0;"
    if output_is_monotonic(m):
        predict = "    return (int)qnn_argmax_i32(acc, QFLOW_OUT_FEATURES);"
    else:
        predict = textwrap.dedent("""\
            float y[QFLOW_OUT_FEATURES];
            int k, best = 0;
            qflow_model_logits(acc, y);
            for (k = 1; k < QFLOW_OUT_FEATURES; k++)
                if (y[k] > y[best])
                    best = k;
            return best;""")
        predict = textwrap.indent(predict, "    ")
    c = f"""/* Generated by qflow: the layer calls of {m.name} over one arena of {p.arena} bytes
 * (buffers at offsets {p.offsets}, sizes {p.buffers}: neighbours never overlap; kernel
 * scratch at {p.scratch}). */
#include <stdlib.h>

#include "model.h"
#include "model_data.h"
#include "qnn.h"

{arena_decl}

int qflow_model_init(void)
{{
{init}
}}

void qflow_model_run(const qflow_input_t *in, int32_t *out)
{{
    QFLOW_MARK(0);
{chr(10).join(src)}
}}

int qflow_model_predict(const int32_t *acc)
{{
{predict}
}}

{output_stage_c(m)}"""
    return h, c


# ---- packaging: ESP-IDF component + example app -----------------------------------------


def runtime_sources() -> list[Path]:
    """The runtime library (kernels and headers), without the test runner."""
    files = sorted(RUNTIME_DIR.glob("qnn*.[ch]"))
    return [f for f in files if f.name != RUNNER]


def fingerprint(model: Model) -> str:
    import hashlib

    h = hashlib.sha256()
    for layer in model.layers:
        h.update(f"{layer.input_dtype}{layer.weight_dtype}{layer.out_dtype}".encode())
        h.update(np.ascontiguousarray(layer.weights, np.int64).tobytes())
        if layer.activation is not None:
            act = layer.activation
            h.update(np.ascontiguousarray(act.values, np.int64).tobytes())
            h.update(f"{act.base},{act.step}".encode())
    o = model.output
    for a in (o.acc_offset, o.acc_scale, *[op.value for op in o.ops]):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update("".join(op.op for op in o.ops).encode())
    for f in runtime_sources():  # a changed kernel regenerates the copies
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def size_report(p: Plan, chip: str) -> dict[str, Any]:
    weights = sum(lp.weight_bytes for lp in p.layers)
    thresholds = sum(lp.threshold_bytes + lp.bias_bytes for lp in p.layers)
    budgets = {}
    for name, b in BUDGETS.items():
        heap = p.arena > b["static_dram"]
        budgets[name] = {
            "sram_bytes": b["sram"], "flash_bytes": b["flash"],
            "arena_placement": "heap (allocated by qflow_model_init)" if heap else "static",
            "fits": p.arena <= b["sram"] and weights + thresholds <= APP_PARTITION,
        }
    return {
        "model": p.model.name, "fingerprint": fingerprint(p.model), "chip": chip,
        "weights_bytes": weights, "threshold_bytes": thresholds, "arena_bytes": p.arena,
        "arena_buffers": [{"offset": o, "bytes": s} for o, s in zip(p.offsets, p.buffers,
                                                                      strict=True)],
        "arena_scratch": {"offset": p.scratch, "bytes": p.arena - p.scratch},
        "app_partition_bytes": APP_PARTITION,
        "layers": [{
            "name": lp.layer.name, "kernel": f"qnn_dense_{lp.kernel}",
            **({"kernel_choice": lp.why} if lp.why else {}),
            "in": lp.layer.in_features, "out": lp.layer.out_features,
            "input": str(lp.layer.input_dtype), "weight": str(lp.layer.weight_dtype),
            "output": str(lp.layer.out_dtype), "macs": lp.macs,
            "weight_bits_stored": lp.weight_bits, "weights_bytes": lp.weight_bytes,
            "threshold_bytes": lp.threshold_bytes + lp.bias_bytes,
            "output_buffer_bytes": (p.buffers[lp.index + (1 if p.input_buffer else 0)]
                                    if lp.index < len(p.layers) - 1 else 0),
        } for lp in p.layers],
        "budgets": budgets,
        "notes": [
            "weights, thresholds and biases are const: flash (.rodata / DROM), never RAM",
            f"the example app's partition table gives the app {APP_PARTITION // KB} KB of a "
            "4 MB flash (ESP-IDF's default single-app table gives 1 MB)",
            "on the ESP32 a static array above 160 KB does not fit DRAM: such an arena is "
            "allocated from the heap by qflow_model_init()",
            "int8 weights take 2 bytes each as pairs (qnn_dense_int8_pairs, two MACs per "
            "multiply), 1 byte (qnn_dense_int8) in the biggest layers when the pairs would "
            "not fit the app partition; see each layer's kernel_choice",
        ],
    }


def check_budget(report: dict[str, Any], chip: str) -> None:
    if chip not in BUDGETS:
        raise FirmwareError(f"unknown chip {chip!r}; choose from {', '.join(BUDGETS)}")
    b = BUDGETS[chip]
    arena, const = report["arena_bytes"], report["weights_bytes"] + report["threshold_bytes"]
    if arena > b["sram"]:
        raise FirmwareError(f"{report['model']}: the activation arena needs {arena} bytes, "
                            f"more than the {b['sram'] // KB} KB SRAM of the {chip}")
    if const > APP_PARTITION:
        raise FirmwareError(f"{report['model']}: weights and thresholds need {const} bytes, "
                            f"more than the {APP_PARTITION // KB} KB app partition of a "
                            f"{b['flash'] // KB // KB} MB flash")


def example_vectors(model: Model, build_dir: Path, n: int = 16) -> np.ndarray:
    """Test inputs for the example app: the build's test split when it names one."""
    try:
        from flow.inputs import test_codes

        return test_codes(build_dir, n)
    except (ValueError, FileNotFoundError, ImportError):
        from flow.synthetic import random_codes

        return random_codes(model, n)


def test_vectors_c(model: Model, codes: np.ndarray) -> tuple[str, str]:
    acc = golden.run_codes(model, codes)
    y = golden.dequantize_output(model.output, acc).reshape(len(codes), -1)
    n = len(codes)
    h = f"""/* Generated by qflow: test vectors with the golden model's outputs. */
#ifndef QFLOW_TEST_VECTORS_H
#define QFLOW_TEST_VECTORS_H

#include "model.h"

#define QFLOW_TEST_VECTORS {n}
extern const qflow_input_t qflow_test_inputs[QFLOW_TEST_VECTORS][QFLOW_IN_FEATURES];
extern const int32_t qflow_test_expected[QFLOW_TEST_VECTORS][QFLOW_OUT_FEATURES];
extern const int qflow_test_classes[QFLOW_TEST_VECTORS];

#endif
"""
    in_t = model.input.out_dtype
    ctype = "uint8_t" if not in_t.signed and not in_t.is_bipolar else "int8_t"
    def rows(ctype: str, decl: str, a: np.ndarray) -> str:
        lines = ",\n".join("    {" + ", ".join(c_literals(ctype, r)) + "}" for r in a)
        return f"const {ctype} {decl} = {{\n{lines}\n}};\n"

    c = ['#include "test_vectors.h"', "",
         rows(ctype, "qflow_test_inputs[QFLOW_TEST_VECTORS][QFLOW_IN_FEATURES]", codes),
         rows("int32_t", "qflow_test_expected[QFLOW_TEST_VECTORS][QFLOW_OUT_FEATURES]", acc),
         c_array("int", "qflow_test_classes", y.argmax(1)).replace(
             f"qflow_test_classes[{n}]", "qflow_test_classes[QFLOW_TEST_VECTORS]")]
    return h, "\n".join(c)


EXAMPLE_MAIN = r"""/* qflow example app: runs the model on embedded test vectors, prints each prediction,
 * the agreement with the golden model's accumulators and microseconds per inference. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "esp_timer.h"
#include "model.h"
#include "test_vectors.h"

#define REPEATS 20

void app_main(void)
{
    static int32_t acc[QFLOW_OUT_FEATURES];
    int n, r, equal = 0, classes = 0;
    int64_t t0, elapsed;
    if (qflow_model_init() != 0) {
        printf("qflow: cannot allocate the %d-byte arena\n", QFLOW_ARENA_BYTES);
        return;
    }
    for (n = 0; n < QFLOW_TEST_VECTORS; n++) {
        int same, pred;
        qflow_model_run(qflow_test_inputs[n], acc);
        same = memcmp(acc, qflow_test_expected[n], sizeof acc) == 0;
        pred = qflow_model_predict(acc);
        equal += same;
        classes += pred == qflow_test_classes[n];
        printf("qflow: sample %d predicted %d expected %d accumulators %s\n", n, pred,
               qflow_test_classes[n], same ? "equal" : "DIFFER");
    }
    t0 = esp_timer_get_time();
    for (r = 0; r < REPEATS; r++)
        for (n = 0; n < QFLOW_TEST_VECTORS; n++)
            qflow_model_run(qflow_test_inputs[n], acc);
    elapsed = esp_timer_get_time() - t0;
    printf("qflow: %d/%d accumulators equal, %d/%d predictions equal to the golden model\n",
           equal, QFLOW_TEST_VECTORS, classes, QFLOW_TEST_VECTORS);
    printf("qflow: %" PRId64 " us per inference (mean of %d), arena %d bytes\n",
           elapsed / (REPEATS * QFLOW_TEST_VECTORS), REPEATS * QFLOW_TEST_VECTORS,
           QFLOW_ARENA_BYTES);
}
"""


def package_files(p: Plan, vectors: np.ndarray) -> dict[str, str]:
    """Every generated text file of build_dir/firmware/, by relative path."""
    comp = f"components/{COMPONENT}"
    data_h, data_c = model_data_c(p)
    model_h, model_c_src = model_c(p)
    tv_h, tv_c = test_vectors_c(p.model, vectors)
    srcs = sorted([f.name for f in runtime_sources() if f.suffix == ".c"]
                  + ["model.c", "model_data.c"])
    files = {
        f"{comp}/model_data.h": data_h, f"{comp}/model_data.c": data_c,
        f"{comp}/model.h": model_h, f"{comp}/model.c": model_c_src,
        f"{comp}/CMakeLists.txt": (
            "# qflow model and the qnn kernels (C99, no heap, weights in flash)\n"
            "idf_component_register(SRCS " + " ".join(f'"{s}"' for s in srcs)
            + '\n                       INCLUDE_DIRS ".")\n'
            "# the kernels' speed matters more than the project's optimization level\n"
            "target_compile_options(${COMPONENT_LIB} PRIVATE -O2)\n"),
        f"{comp}/idf_component.yml": (
            'version: "1.0.0"\n'
            f'description: "qflow-generated quantized MLP {p.model.name} with the qnn '
            'integer kernels"\n'
            "dependencies:\n  idf:\n    version: \">=4.4\"\n"),
        "CMakeLists.txt": (
            "# ESP-IDF project of the qflow example app: idf.py build flash monitor\n"
            "cmake_minimum_required(VERSION 3.16)\n"
            "include($ENV{IDF_PATH}/tools/cmake/project.cmake)\n"
            "project(qflow_example)\n"),
        "sdkconfig.defaults": (
            "CONFIG_COMPILER_OPTIMIZATION_PERF=y\n"
            "CONFIG_ESPTOOLPY_FLASHSIZE_4MB=y\n"
            "# the default single-app partition (1 MB) is too small for bigger models\n"
            "CONFIG_PARTITION_TABLE_CUSTOM=y\n"
            'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"\n'
            "CONFIG_ESP_MAIN_TASK_STACK_SIZE=8192\n"),
        "partitions.csv": (
            "# Name,   Type, SubType, Offset,  Size\n"
            "nvs,      data, nvs,     0x9000,  0x6000,\n"
            "phy_init, data, phy,     0xf000,  0x1000,\n"
            f"factory,  app,  factory, 0x10000, {APP_PARTITION:#x},\n"),
        "main/CMakeLists.txt": (
            'idf_component_register(SRCS "main.c" "test_vectors.c"\n'
            '                       INCLUDE_DIRS "."\n'
            f"                       PRIV_REQUIRES {COMPONENT} esp_timer)\n"),
        "main/main.c": EXAMPLE_MAIN,
        "main/test_vectors.h": tv_h, "main/test_vectors.c": tv_c,
    }
    return files


def generate(model: Model, build_dir: Path, chip: str = "esp32") -> Path:
    """Write build_dir/firmware/ (ESP-IDF project + component, size_report.json) atomically;
    FirmwareError when the model does not fit `chip`."""
    build_dir = Path(build_dir)
    p = plan(model)
    report = size_report(p, chip)
    check_budget(report, chip)
    files = package_files(p, example_vectors(model, build_dir))

    def build(tmp: Path) -> None:
        comp = tmp / "components" / COMPONENT
        comp.mkdir(parents=True)
        (tmp / "main").mkdir()
        for f in runtime_sources():
            shutil.copy2(f, comp / f.name)
        for rel, text in files.items():
            (tmp / rel).write_text(text)
        write_json(tmp / "size_report.json", report)

    out = replace_dir(build_dir / "firmware", build)
    for lp in p.layers:
        if lp.why:
            log.info("firmware: layer %d (%s): qnn_dense_%s, %s", lp.index, lp.layer.name,
                     lp.kernel, lp.why)
    log.info("firmware: %s: weights %d B, thresholds %d B, arena %d B -> %s", model.name,
             report["weights_bytes"], report["threshold_bytes"], report["arena_bytes"], out)
    return out


def ensure_generated(model: Model, build_dir: Path) -> Path:
    """build_dir/firmware/ for this very model (regenerated when stale or missing)."""
    folder = Path(build_dir) / "firmware"
    rep = folder / "size_report.json"
    if rep.is_file() and json.loads(rep.read_text()).get("fingerprint") == fingerprint(model):
        return folder
    return generate(model, build_dir)


# ---- building and running ---------------------------------------------------------------


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FirmwareError(f"{name} not found on PATH ({hint})")
    return path


def _c_string(s: str) -> str:
    return json.dumps(s)  # a valid C string literal for the paths we make


def compile_program(sources: list[Path], exe: Path, target: str, flags: list[str]) -> Path:
    """C99 sources -> a program for the host or for RV32IMC under QEMU (warnings as errors)."""
    srcs = [str(f) for f in sources]
    if target == "host":
        cmd = [_tool("gcc", "install gcc"), *CFLAGS, *flags, *srcs, "-o", str(exe)]
    elif target == "rv32":
        cc = _tool("riscv64-unknown-elf-gcc", "apt-get install gcc-riscv64-unknown-elf "
                   "picolibc-riscv64-unknown-elf")
        mem = [f"-Wl,--defsym=__flash={RV32_FLASH:#x}",
               f"-Wl,--defsym=__flash_size={RV32_FLASH_SIZE:#x}",
               f"-Wl,--defsym=__ram={RV32_RAM:#x}", f"-Wl,--defsym=__ram_size={RV32_RAM_SIZE:#x}"]
        cmd = [cc, *RV32_FLAGS, *CFLAGS, *flags, *srcs, *mem, "-o", str(exe)]
    else:
        raise FirmwareError(f"unknown firmware target {target!r} (host or rv32)")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise FirmwareError(f"{target} build failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return exe


def run_program(exe: Path, target: str, cwd: Path, timeout: float = 900) -> str:
    """Run a program built by compile_program; returns its output (QEMU prints the
    program's semihosting output on stderr). FirmwareError on a non-zero exit."""
    if target == "host":
        cmd = [str(exe)]
    else:
        qemu = _tool("qemu-system-riscv32", "apt-get install qemu-system-misc")
        cmd = [qemu, "-machine", "virt", "-nographic", "-bios", "none", "-kernel", str(exe),
               "-semihosting-config", "enable=on,target=native", "-icount", "shift=0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    if r.returncode:
        raise FirmwareError(f"{exe.name} on {target} failed (exit {r.returncode}):\n"
                            f"{r.stdout[-4000:]}{r.stderr[-4000:]}")
    return r.stdout + r.stderr


def build(model: Model, build_dir: Path, target: str = "host", sanitize: bool = False,
          profile: bool = True) -> Path:
    """Compile the generated model + runtime + runner; returns the program's folder."""
    src = ensure_generated(model, build_dir) / "components" / COMPONENT
    name = target + ("-san" if sanitize else "")
    out = Path(build_dir) / "firmware_build" / name
    out.mkdir(parents=True, exist_ok=True)
    defs = [f"-DQNN_RUNNER_INPUT={_c_string(str((out / 'in.bin').resolve()))}",
            f"-DQNN_RUNNER_OUTPUT={_c_string(str((out / 'out.bin').resolve()))}",
            f"-DQFLOW_PROFILE={int(profile)}", f"-I{src}"]
    if sanitize and target != "host":
        raise FirmwareError("sanitizers exist on the host only")
    compile_program([*sorted(src.glob("*.c")), RUNTIME_DIR / RUNNER],
                    out / ("runner" if target == "host" else "runner.elf"), target,
                    defs + (SANITIZE if sanitize else []))
    return out


def input_bytes(model: Model, codes: np.ndarray) -> bytes:
    codes = np.asarray(codes)
    t = model.input.out_dtype
    if codes.ndim != 2 or codes.shape[1] != model.input.features:
        raise FirmwareError(f"codes of shape {codes.shape}, the model takes "
                            f"[N, {model.input.features}]")
    if codes.size and (codes.min() < t.min or codes.max() > t.max):
        raise FirmwareError(f"input codes outside {t}")
    return codes.astype(np.uint8 if not t.signed and not t.is_bipolar else np.int8).tobytes()


def execute(model: Model, build_dir: Path, codes: np.ndarray, target: str = "host",
            sanitize: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Build and run; returns (accumulators [N, C], runner statistics)."""
    out = build(model, build_dir, target, sanitize)
    (out / "in.bin").write_bytes(input_bytes(model, codes))
    (out / "out.bin").unlink(missing_ok=True)
    exe = out / ("runner" if target == "host" else "runner.elf")
    stdout = run_program(exe, target, out)
    c = model.layers[-1].out_features
    acc = np.fromfile(out / "out.bin", dtype="<i4").reshape(-1, c).astype(np.int64)
    if len(acc) != len(codes):
        raise FirmwareError(f"firmware {target}: {len(acc)} outputs for {len(codes)} inputs")
    return acc, parse_stats(stdout)


def parse_stats(stdout: str) -> dict[str, Any]:
    stats: dict[str, Any] = {"stages": []}
    for line in stdout.splitlines():
        f = line.split()
        if f[:1] == ["qnn-stats"]:
            stats.update({f[k]: int(f[k + 1]) for k in range(1, len(f) - 1, 2)})
        elif f[:1] == ["qnn-stage"]:
            stats["stages"].append(int(f[3]))
    return stats


def run(model: Model, build_dir: Path, codes: np.ndarray, target: str = "host",
        sanitize: bool = False) -> np.ndarray:
    """Input codes [N, features] -> the last layer's int64 accumulators, computed by the
    generated C on the host or on RV32IMC under QEMU."""
    return execute(model, build_dir, codes, target, sanitize)[0]


# ---- report and command line ------------------------------------------------------------


def elf_sizes(elf: Path) -> dict[str, int]:
    """text / rodata / data / bss / stack bytes of an RV32 ELF. picolibc's linker script
    puts .rodata inside the flash's .text output section, so rodata is the sum of the data
    objects placed there (objdump flag O) and text the rest of that section."""
    size = _tool("riscv64-unknown-elf-size", "apt-get install binutils-riscv64-unknown-elf")
    objdump = _tool("riscv64-unknown-elf-objdump", "apt-get install binutils-riscv64-unknown-elf")
    r = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True, check=True)
    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack": 0}
    groups = {"text": (".text", ".init"), "data": (".data", ".sdata", ".tdata"),
              "bss": (".bss", ".sbss", ".tbss"), "stack": (".stack",)}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[1].isdigit():
            for key, names in groups.items():
                if f[0] in names:
                    out[key] += int(f[1])
    r = subprocess.run([objdump, "-t", str(elf)], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        f = line.split()  # address, flags..., section, size, name
        if len(f) >= 5 and "O" in f[1:-3] and f[-3] in groups["text"]:
            out["rodata"] += int(f[-2], 16)
    out["text"] -= out["rodata"]
    return out


def constants_in_flash(elf: Path) -> dict[str, Any]:
    """Where the linker put the model's constants: every qflow_w*/t*/b* symbol must lie in
    the flash region (read-only), none in RAM."""
    nm = _tool("riscv64-unknown-elf-nm", "apt-get install binutils-riscv64-unknown-elf")
    r = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, check=True)
    in_ram, in_flash, ram_bytes = [], 0, 0
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[3][:7] in ("qflow_w", "qflow_t", "qflow_b"):
            addr, size = int(f[0], 16), int(f[1], 16)
            if RV32_FLASH <= addr < RV32_FLASH + RV32_FLASH_SIZE:
                in_flash += size
            else:
                in_ram.append(f[3])
                ram_bytes += size
    return {"constant_bytes_in_flash": in_flash, "constant_bytes_in_ram": ram_bytes,
            "constants_in_ram": in_ram}


def build_report(model: Model, build_dir: Path, codes: np.ndarray,
                 sanitize: bool = False) -> dict[str, Any]:
    """Build and run on the host and on RV32IMC (QEMU), compare both with flow.golden and
    write build_dir/firmware.json: sizes, arena, instructions per inference and per MAC."""
    build_dir = Path(build_dir)
    ensure_generated(model, build_dir)
    ref = golden.run_codes(model, codes)
    p = plan(model)
    host, _ = execute(model, build_dir, codes, "host", sanitize)
    rv32, stats = execute(model, build_dir, codes, "rv32")
    elf = build_dir / "firmware_build" / "rv32" / "runner.elf"
    stages = stats["stages"]
    layer_instr = stages[1:] if p.input_buffer else stages
    layers = []
    by_kind: dict[str, list[int]] = {}
    for lp, instr in zip(p.layers, layer_instr, strict=True):
        layers.append({"name": lp.layer.name, "kernel": f"qnn_dense_{lp.kernel}",
                       "macs": lp.macs, "instructions": instr,
                       "instructions_per_mac": instr / lp.macs})
        kind = {"xnor": "binary", "int8_pairs": "int8"}.get(lp.kernel, lp.kernel)
        acc = by_kind.setdefault(kind, [0, 0])
        acc[0] += instr
        acc[1] += lp.macs
    per_inf = stats["instret_min"]
    report = {
        "model": model.name, "samples": len(codes),
        "host_equal_golden": int(np.all(host == ref, axis=1).sum()),
        "rv32_equal_golden": int(np.all(rv32 == ref, axis=1).sum()),
        "all_equal": bool(np.array_equal(host, ref) and np.array_equal(rv32, ref)),
        "sizes": json.loads((build_dir / "firmware" / "size_report.json").read_text()),
        "rv32_elf_bytes": elf_sizes(elf),
        "rv32_placement": constants_in_flash(elf),
        "instructions_per_inference": per_inf,
        "instructions_per_inference_max": stats["instret_max"],
        "input_conversion_instructions": stages[0] if p.input_buffer else 0,
        "layers": layers,
        "instructions_per_mac": {k: v[0] / v[1] for k, v in by_kind.items()},
        "estimated_latency_us_at_160mhz": per_inf / CLOCK_MHZ,
        "notes": [
            "instructions counted by RV32IMC instret under qemu-system-riscv32 -icount; "
            "runtime library and model built with -O2",
            f"latency is an estimate: instructions / {CLOCK_MHZ} MHz at 1 instruction per "
            "cycle, ignoring flash cache misses, multiply latency and branch penalties",
            "per-layer counts include one profiling call (a few instructions) each",
        ],
    }
    write_json(build_dir / "firmware.json", report)
    return report


def _cmd_firmware(a: argparse.Namespace) -> None:
    from flow.ir import load

    build_dir = Path(a.build_dir)
    model = load(build_dir)
    codes = command_codes(build_dir, a.inputs, a.limit)
    generate(model, build_dir, a.chip)
    r = build_report(model, build_dir, codes)
    log.info("firmware: %d/%d host, %d/%d rv32 equal to golden; %d instructions per inference "
             "(~%.0f us at %d MHz, estimate); arena %d B -> %s", r["host_equal_golden"],
             r["samples"], r["rv32_equal_golden"], r["samples"], r["instructions_per_inference"],
             r["estimated_latency_us_at_160mhz"], CLOCK_MHZ, r["sizes"]["arena_bytes"],
             build_dir / "firmware.json")
    if not r["all_equal"]:
        raise FirmwareError("firmware outputs differ from the golden model (see firmware.json)")


def _cmd_flash(a: argparse.Namespace) -> None:
    app = Path(a.build_dir) / "firmware"
    if not (app / "CMakeLists.txt").is_file():
        raise FirmwareError(f"{app}: no generated firmware (run `qflow export` or "
                            f"`qflow firmware {a.build_dir}` first)")
    missing = []
    if not os.environ.get("IDF_PATH"):
        missing.append("IDF_PATH is not set")
    if shutil.which("idf.py") is None:
        missing.append("idf.py is not on PATH")
    if not a.port:
        missing.append("no --port given (e.g. /dev/ttyUSB0)")
    if missing:
        raise FirmwareError("flash needs ESP-IDF: " + "; ".join(missing)
                            + ". Install ESP-IDF (v5.x) and run `. $IDF_PATH/export.sh` first.")
    r = subprocess.run(["idf.py", "-C", str(app), "-p", a.port, "flash", "monitor"])
    if r.returncode:
        raise FirmwareError(f"idf.py flash monitor failed (exit {r.returncode})")


def register_cli(sub: Any) -> None:
    """Add `firmware` and `flash` to the qflow command line."""
    s = sub.add_parser("firmware", help="generate, build (host + RV32 in QEMU) and check the "
                       "C firmware against the golden model; writes firmware.json")
    s.add_argument("build_dir")
    s.add_argument("--inputs", help="float inputs (.npy); default: the build's test split")
    s.add_argument("--limit", type=int, help="use only the first N samples")
    s.add_argument("--chip", default="esp32", choices=list(BUDGETS),
                   help="memory budget to check against")
    s.set_defaults(func=_cmd_firmware)
    s = sub.add_parser("flash", help="idf.py flash monitor of the example app (needs ESP-IDF)")
    s.add_argument("build_dir")
    s.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    s.set_defaults(func=_cmd_flash)
