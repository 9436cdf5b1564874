"""Everything dense-specific in the firmware: the kernel choice and stored arrays of one
dense layer (DensePlan, from plan_layer), its weight packing, and the C of its constants
and of its call in qflow_model_run. The kernels are firmware/qnn_dense_*.c (see qnn.h)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from flow.backends.firmware.activation import (
    activation_arrays_c,
    is_half_even,
    requant_c,
    stored_activation,
    stored_bias,
)
from flow.backends.firmware.common import (
    FirmwareError,
    buffer_bytes,
    c_array,
    int32_or_none,
    storage_offset,
)
from flow.backends.firmware.weights import (
    LANES,
    interleave_rows,
    pack_bits,
    pack_rows,
    pair_words,
    pairs_fit,
    sliced_planes,
    table_groups,
    table_weights,
    transpose_lanes,
)
from flow.datatypes import DataType
from flow.ir import DenseLayer, Requant

KINDS = (DenseLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

INT8_PAIR_ROWS = 8  # QNN_INT8_PAIR_ROWS in qnn.h
WEIGHT_CTYPE = {"xnor": "uint32_t", "xnor_sliced": "uint32_t", "bipolar_weights": "uint32_t",
                "bipolar_table": "uint8_t",
                "int8": "int8_t",
                "int8_pairs": "int32_t", "packed": "uint8_t", "depthwise": "int16_t"}
SCRATCH_KERNELS = ("bipolar_weights", "bipolar_table", "int8_pairs")  # take a scratch argument
# kernels grouped for instructions per MAC: both int8 kernels count as int8, both kernels of
# BIPOLAR weights on int8 inputs as bipolar_weights
MAC_KIND = {"xnor": "binary", "xnor_sliced": "binary", "int8_pairs": "int8",
            "bipolar_table": "bipolar_weights"}
TABLE_ENTRIES = 16  # QNN_TABLE_ENTRIES in qnn.h (int16 each)
# inputs of up to this many bits as stored go bit-serial (qnn_dense_bipolar_weights: one
# bit plane each), wider ones to the table kernel (4 instructions per 4 MACs whatever the
# width; bit-serial costs about 0.75 instructions per MAC and input bit on RV32IMC)
BIT_SERIAL_MAX_BITS = 2
# for size_report.json's notes
NOTES = ["int8 weights take 2 bytes each as pairs (qnn_dense_int8_pairs, two MACs per "
         "multiply), 1 byte (qnn_dense_int8) in the biggest layers when the pairs would not "
         "fit the app partition; see each layer's kernel_choice"]


def reads_bits(layer: DenseLayer, bits_out: bool = False) -> bool:
    """The XNOR kernel (BIPOLAR inputs x BIPOLAR weights) is the only one reading bits."""
    return layer.is_xnor


def sliced(lp: DensePlan, words: np.ndarray, t: np.ndarray, shift: int) -> DensePlan:
    """A plan of qnn_dense_xnor_sliced / QNN_CONV_XNOR_SLICED: rows of packed weight words
    [out, n] and per-row thresholds T (already clipped to [0, (in << shift) + 1]) as
    bit-sliced planes (see qnn.h)."""
    n_in = lp.in_stored or lp.layer.in_features
    planes = transpose_lanes(t.astype(np.uint32)[:, None])  # 32 words per block: bits 0..31
    planes = planes.reshape(-1, 32)[:, :sliced_planes(n_in, shift)]
    return replace(lp, kernel="xnor_sliced", weights=transpose_lanes(words),
                   thresholds=planes.reshape(-1, 1).view(np.int32),
                   why="bits by one threshold: bit-sliced, 32 channels a pass")


def goes_sliced(lp: DensePlan) -> bool:
    """An XNOR layer whose outputs are bits, each the comparison of the accumulator with one
    threshold (what the bit-sliced kernels compute), and whose channels fill at least 2/3
    of the 32-lane blocks: a block costs the same for 1 channel as for 32, and its weights
    take 32 rows of flash."""
    padded = LANES * -(-lp.outputs // LANES)
    return (lp.kernel == "xnor" and lp.out_kind == "BITS" and lp.thresholds is not None
            and lp.thresholds.shape[1] == 1 and lp.bias is None
            and lp.base <= 0 < lp.base + lp.step and 3 * lp.outputs >= 2 * padded)


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


# ---- one layer's plan -----------------------------------------------------------------------


@dataclass
class DensePlan:
    """The kernel, stored arrays and constants of one dense layer (see flow.backends.
    firmware.ops.LayerPlan for what model-level code reads)."""

    index: int
    layer: DenseLayer
    kernel: str  # xnor | xnor_sliced | bipolar_weights | bipolar_table | int8_pairs | int8 | packed
    weight_bits: int  # bits per stored weight (1 for bits, 16 for int8 pairs)
    weights: np.ndarray  # as stored: uint32 / int32 words, int8, or uint8 packed bytes
    thresholds: np.ndarray | None  # int32 [out, count]
    bias: np.ndarray | None  # int32 [out], added to the accumulator (half_even: see c_bias)
    w_offset: int
    base: int
    step: int
    out_kind: str  # ACC | INT8 | BITS | REQUANT
    in_bits: int  # bits of an input as stored
    in_signed: bool
    why: str = ""  # why this kernel (int8 weights: pairs or not)
    in_stored: int = 0  # inputs as the kernel counts them, when not in_features (see in_pixel)
    requant: Requant | None = None  # REQUANT: its multipliers, shifts, zero point, clamp

    @property
    def kernel_name(self) -> str:
        return f"qnn_dense_{self.kernel}"

    @property
    def mac_kind(self) -> str:
        return MAC_KIND.get(self.kernel, self.kernel)

    @property
    def outputs(self) -> int:
        return self.layer.out_features

    @property
    def output_bytes(self) -> int:
        return buffer_bytes(self.layer.out_features, self.out_kind == "BITS")

    @property
    def scratch_bytes(self) -> int:
        """Bit planes of the inputs (qnn_dense_bipolar_weights) or the packed input pairs
        (qnn_dense_int8_pairs)."""
        if self.kernel == "bipolar_weights":
            return 4 * self.in_bits * ((self.layer.in_features + 31) // 32)
        if self.kernel == "bipolar_table":
            return 2 * TABLE_ENTRIES * table_groups(self.layer.in_features)
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
    def half_even(self) -> bool:
        return is_half_even(self.requant)

    @property
    def threshold_bytes(self) -> int:
        """The activation's constants: thresholds, or the requantization's multipliers
        (int32) and shifts (int8)."""
        if self.requant is not None:
            return 5 * self.layer.out_features
        return 0 if self.thresholds is None else int(self.thresholds.nbytes)

    @property
    def c_bias(self) -> np.ndarray | None:
        """The stored bias: int32 added to the accumulator, or half_even's int64 product bias
        (qnn_requant_t, `product_bias`) with `bias` folded in."""
        return stored_bias(self.requant, self.bias, f"layer {self.index} ({self.layer.name})")

    @property
    def bias_bytes(self) -> int:
        b = self.c_bias
        return 0 if b is None else int(b.nbytes)

    def compact(self) -> DensePlan | None:
        """int8 pairs (2 bytes per weight) as qnn_dense_int8 (1 byte), else None."""
        if self.kernel != "int8_pairs":
            return None
        return plan_layer(self.index, self.layer, compact=True, bits_out=self.out_kind == "BITS")

    def arrays_c(self) -> str:
        """C definitions of the layer's constant arrays."""
        i = self.index
        return (c_array(WEIGHT_CTYPE[self.kernel], f"qflow_w{i}", self.weights)
                + activation_arrays_c(i, self.thresholds, self.c_bias, self.requant))

    def initializer_c(self) -> str:
        """The initializer of its qnn_dense_t (the arrays of arrays_c)."""
        i, layer = self.index, self.layer
        thr = "0" if self.thresholds is None else f"qflow_t{i}"
        bias = "0" if self.bias is None or self.half_even else f"qflow_b{i}"
        count = 0 if self.thresholds is None else self.thresholds.shape[1]
        return (f"{{\n    qflow_w{i}, {thr}, {bias}, {self.w_offset}, "
                f"{self.in_stored or layer.in_features}, {layer.out_features}, {count},\n"
                f"    {self.base}, {self.step}, QNN_OUT_{self.out_kind}, {self.weight_bits}, "
                f"{self.in_bits}, {int(self.in_signed)},\n    {requant_c(i, self.requant)}\n}}")

    def constants_c(self, name: str) -> str:
        """C definitions of the layer's constants and of its qnn_dense_t `name`."""
        layer = self.layer
        return (f"/* {layer.name} (from {layer.source}): {layer.out_features} x "
                f"{layer.in_features}, {layer.weight_dtype} weights x {layer.input_dtype} "
                f"inputs -> {layer.out_dtype}, kernel {self.kernel_name} */\n"
                + self.arrays_c() + f"const qnn_dense_t {name} = {self.initializer_c()};\n")

    def declaration_c(self, name: str) -> str:
        return f"extern const qnn_dense_t {name};"

    def call_c(self, name: str, xs: Sequence[str], y: str, scratch: str) -> str:
        """The kernel call reading C expression xs[0], writing y (scratch: the kernels'
        scratch in the arena)."""
        (x,) = xs
        cast = "const uint32_t *" if self.kernel.startswith("xnor") else "const int8_t *"
        extra = f", (uint32_t *)({scratch})" if self.kernel in SCRATCH_KERNELS else ""
        return f"{self.kernel_name}(&{name}, ({cast}){x}, {y}{extra});"

    def size_row(self) -> dict[str, Any]:
        """The layer's entry in size_report.json."""
        layer = self.layer
        return {
            "name": layer.name, "kernel": self.kernel_name,
            **({"kernel_choice": self.why} if self.why else {}),
            "in": layer.in_features, "out": layer.out_features,
            "input": str(layer.input_dtype), "weight": str(layer.weight_dtype),
            "output": str(layer.out_dtype), "macs": self.macs,
            "weight_bits_stored": self.weight_bits, "weights_bytes": self.weight_bytes,
            "threshold_bytes": self.threshold_bytes + self.bias_bytes,
        }


def plan_layer(i: int, layer: DenseLayer, compact: bool = False, bits_out: bool = False,
               in_pixel: int = 0) -> DensePlan:
    """Kernel, stored arrays and constants of one layer (see _plan_rows); XNOR layers go
    bit-sliced where goes_sliced says (qnn_dense_xnor_sliced), thresholds on the popcount
    p = in - mismatches: p >= t <=> mismatches + t <= in."""
    lp = _plan_rows(i, layer, compact, bits_out, in_pixel)
    if not goes_sliced(lp):
        return lp
    assert lp.thresholds is not None
    n_in = lp.in_stored or layer.in_features
    return sliced(lp, lp.weights, np.clip(lp.thresholds[:, 0], 0, n_in + 1), 0)


def _plan_rows(i: int, layer: DenseLayer, compact: bool = False, bits_out: bool = False,
               in_pixel: int = 0) -> DensePlan:
    """Kernel, stored arrays and constants of one layer, weights row by row. int8 weights go to
    qnn_dense_int8_pairs (2 bytes of flash per weight) unless `compact` asks for
    qnn_dense_int8 (1 byte per weight). The layer reads its inputs as
    bits when it is the XNOR kernel, as int8 otherwise; `bits_out` (the next layer is the
    XNOR kernel) stores its BIPOLAR outputs as bits, else they are stored as int8 -1/+1.
    `in_pixel`: the inputs are a bit frame of pixels of that many channels, each pixel
    starting a word (see qnn.h), rather than a flat bit vector."""
    if in_pixel and in_pixel % 32 and layer.is_xnor:
        return _pixel_aligned(_plan_rows(i, layer, compact, bits_out), in_pixel)
    at = f"layer {i} ({layer.name}, from {layer.source})"
    acc_bits = layer.acc_dtype.bits
    if acc_bits > 32:
        raise FirmwareError(f"{at}: accumulator needs {acc_bits} bits, the firmware has 32")
    if layer.in_features > 0xFFFF or layer.out_features > 0xFFFF:
        raise FirmwareError(f"{at}: {layer.out_features} x {layer.in_features} exceeds 65535")
    for operand in (layer.input_dtype, layer.weight_dtype):
        if not operand.is_bipolar and operand.bits > 8:
            raise FirmwareError(f"{at}: {operand} has more than 8 bits")
    x_t, w = layer.input_dtype, layer.weights.astype(np.int64)
    bits, w_off = weight_storage(layer.weight_dtype)
    x_off = storage_offset(x_t)
    in_bits, in_signed = input_storage_bits(x_t, as_bits=reads_bits(layer))
    # the inputs' range as stored (int8 kernels; the XNOR kernel reads bits)
    x_lo, x_hi = x_t.min - x_off, x_t.max - x_off
    why = ""
    if layer.is_xnor:
        kernel, stored = "xnor", pack_bits(w)
    elif layer.weight_dtype.is_bipolar and in_bits <= BIT_SERIAL_MAX_BITS:
        kernel, stored = "bipolar_weights", pack_bits(w)
    elif layer.weight_dtype.is_bipolar:
        kernel, stored = "bipolar_table", table_weights(w)
        why = f"{in_bits}-bit inputs: table lookups, 4 MACs each"
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
        kernel, stored = "packed", pack_rows(w - w_off, bits, "u1")
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
    if act is None:  # the last layer (Model.validate): its accumulators leave the model
        return DensePlan(i, layer, kernel, bits, stored, None, int32_or_none(bias, at), w_off,
                         0, 0, "ACC", in_bits, in_signed, why)
    a = stored_activation(layer, bias, at, bits_out)
    return DensePlan(i, layer, kernel, bits, stored, a.thresholds, a.bias, w_off, a.base, a.step,
                     a.out_kind, in_bits, in_signed, why, requant=a.requant)


def _pixel_aligned(lp: DensePlan, channels: int) -> DensePlan:
    """An XNOR layer reading a bit frame whose pixels of `channels` (not a multiple of 32)
    each start a word: rows packed pixel by pixel, zero bits between pixels. The kernel
    counts the padding bits as agreements (0 ^ 0): d = padded - real inputs more, so its
    popcount thresholds move up by d and its accumulator 2p - in down by d (the bias)."""
    layer = lp.layer
    pixels = layer.in_features // channels
    padded = pixels * 32 * ((channels + 31) // 32)
    if padded > 0xFFFF:
        raise FirmwareError(f"layer {lp.index} ({layer.name}, from {layer.source}): "
                            f"{padded} inputs as stored (pixel-aligned bits) exceed 65535")
    d = padded - layer.in_features
    w = pack_bits(layer.weights.reshape(layer.out_features * pixels, channels))
    bias = lp.bias  # thresholds: None; the accumulator (leaving or requantized) takes -d
    if lp.out_kind in ("ACC", "REQUANT"):
        bias = int32_or_none((0 if bias is None else bias.astype(np.int64)) - np.full(
            layer.out_features, d, np.int64), f"layer {lp.index} ({layer.name})")
    thresholds = None if lp.thresholds is None else lp.thresholds + np.int32(d)
    return replace(lp, weights=w.reshape(layer.out_features, -1), thresholds=thresholds,
                   bias=bias, in_stored=padded)
