"""Everything conv2d-specific in the firmware: a convolution is the dense layer of one
window run at every output position (firmware/qnn_conv.c). Its window's kernel, stored
weights and thresholds come from the dense planner on that window's dense layer, then the
XNOR kernel's weights are packed pixel by pixel (bit frames: every pixel starts a word)
with thresholds on the accumulator (taps - 2 * mismatches over the real taps, so that
padded taps count for nothing); where its outputs are bits by one threshold, as the
bit-sliced kernel's planes (QNN_CONV_XNOR_SLICED, which reads the window's words in place).
Depthwise layers take int16 weights per channel. int8 weights of three input channels or
more go to QNN_CONV_INT8_PAIRS (firmware/qnn_conv_int8.c): the window's pair words re-laid
tap by tap in (kx, ky) order, and the scratch of its ring of packed input rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from flow.backends.firmware import dense
from flow.backends.firmware.common import (
    FirmwareError,
    int32_or_none,
    requant_bias,
    storage_offset,
)
from flow.backends.firmware.dense import DensePlan
from flow.backends.firmware.weights import conv_pair_words, pack_bits
from flow.ir import Conv2dLayer, DenseLayer, Requant, Thresholds

KINDS = (Conv2dLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

KERNEL = {"xnor": "XNOR", "xnor_sliced": "XNOR_SLICED", "bipolar_weights": "BIPOLAR_WEIGHTS",
          "int8_pairs": "INT8_PAIRS",
          "int8": "INT8", "packed": "PACKED", "depthwise": "DEPTHWISE",
          "bipolar_table": "BIPOLAR_TABLE"}  # QNN_CONV_*
MAC_KIND = {"xnor": "binary_conv", "xnor_sliced": "binary_conv", "int8_pairs": "int8_conv",
            "int8": "int8_conv",
            "bipolar_table": "bipolar_weights_conv"}
# int8 convolutions of fewer input channels gather windows for qnn_dense_int8 instead of
# packing pixels into pairs padded to 4 channels (2-4 times the MACs; measured slower)
PAIRS_MIN_CHANNELS = 3
# window kernels that run several positions per pass (qnn_conv.c's table_conv)
POSITIONS_PER_PASS = {"bipolar_table": 2}
NOTES = ["convolutions gather one window at a time into the arena's scratch (no im2col), "
         "bit-sliced XNOR ones read the window's words in place, int8 pairs ones pack "
         "kh input rows into pairs (a ring in scratch) and read windows there; "
         "bit frames keep every pixel word-aligned (ceil(C/32) words a pixel)"]


def reads_bits(layer: Conv2dLayer, bits_out: bool = False) -> bool:
    """BIPOLAR x BIPOLAR convolutions read bit frames (depthwise ones read int8 -1/+1)."""
    return layer.is_xnor and not layer.depthwise


def words(channels: int) -> int:
    """Words of one pixel of a bit frame."""
    return (channels + 31) // 32


def frame_bytes(pixels: int, channels: int, as_bits: bool) -> int:
    """Arena bytes of a frame stored as bits (word-aligned pixels) or as int8."""
    return 4 * pixels * words(channels) if as_bits else 4 * ((pixels * channels + 3) // 4)


def window_layer(layer: Conv2dLayer) -> DenseLayer:
    """The dense layer of one window: C_out rows of kh * kw * C_in / group taps."""
    co = layer.out_channels
    return DenseLayer(name=layer.name, source=layer.source, in_features=layer.window,
                      out_features=co, input_dtype=layer.input_dtype,
                      weight_dtype=layer.weight_dtype, weights=layer.weights.reshape(co, -1),
                      acc_min=layer.acc_min, acc_max=layer.acc_max, activation=layer.activation)


def pair_ring_words(layer: Conv2dLayer, pixel_sums: bool) -> int:
    """Scratch words of QNN_CONV_INT8_PAIRS (qnn_conv_int8.c's ring_geometry and layout): a
    ring of 2 * kh packed input rows, each 2 * ceil(C/4) pairs of each pixel of the padded
    row that four positions a pass read (by stride phase); with w_offset, kh rows of pixel
    sums; kw run offsets; an output row's accumulators of a block of 4 channels, and a word of
    bits and a start per position."""
    (kh, kw), sw, ow = layer.kernel, layer.stride[1], layer.out_shape[1]
    lanes = 4 * -(-ow // 4)
    pixels = sw * -(-((lanes - 1) * sw + kw) // sw)  # of a packed row, by stride phase
    slot = 2 * ((layer.in_shape[2] + 3) // 4) * pixels  # one word a pair
    return 2 * kh * slot + (kh * pixels if pixel_sums else 0) + kw + 6 * lanes


@dataclass
class ConvPlan:
    index: int
    layer: Conv2dLayer
    window: DensePlan  # the window's dense plan: constants, output kind
    kernel: str  # a key of KERNEL
    pad_code: int  # a padded tap as stored (int8 windows)
    why: str = ""

    @property
    def kernel_name(self) -> str:
        return "qnn_conv2d"

    @property
    def mac_kind(self) -> str:
        return MAC_KIND.get(self.kernel, f"{self.kernel}_conv")

    @property
    def outputs(self) -> int:
        return self.layer.out_features

    @property
    def positions(self) -> int:
        return self.layer.out_shape[0] * self.layer.out_shape[1]

    @property
    def output_bytes(self) -> int:
        return frame_bytes(self.positions, self.layer.out_channels, self.window.out_kind == "BITS")

    @property
    def scratch_bytes(self) -> int:
        """The window (and its mask of padded taps for bit windows), then the window
        kernel's own scratch."""
        taps = self.layer.kernel[0] * self.layer.kernel[1]
        c = self.layer.in_shape[2]
        if self.kernel == "xnor":
            return 2 * 4 * taps * words(c)
        if self.kernel == "xnor_sliced":  # reads the window's words in place
            return 0
        if self.kernel == "int8_pairs":
            return 4 * pair_ring_words(self.layer, self.window.w_offset != 0)
        if self.kernel in POSITIONS_PER_PASS:  # a window and its scratch per position
            return POSITIONS_PER_PASS[self.kernel] * (4 * ((taps * c + 3) // 4)
                                                      + self.window.scratch_bytes)
        return 4 * ((taps * c + 3) // 4) + (0 if self.kernel == "depthwise"
                                            else self.window.scratch_bytes)

    @property
    def macs(self) -> int:
        return self.positions * self.layer.out_channels * self.layer.window

    @property
    def weight_bytes(self) -> int:
        return self.window.weight_bytes

    @property
    def threshold_bytes(self) -> int:
        return self.window.threshold_bytes

    @property
    def bias_bytes(self) -> int:
        return self.window.bias_bytes

    def compact(self) -> ConvPlan | None:
        smaller = self.window.compact()
        return None if smaller is None else replace(self, window=smaller, kernel=smaller.kernel,
                                                    why=smaller.why)

    def constants_c(self, name: str) -> str:
        layer = self.layer
        (h, w, c), (oh, ow, co) = layer.in_shape, layer.out_shape
        (kh, kw), (sh, sw), (top, left, _, _) = layer.kernel, layer.stride, layer.pads
        return (f"/* {layer.name} (from {layer.source}): conv {kh}x{kw} stride {sh}x{sw} pads "
                f"{list(layer.pads)}{' depthwise' if layer.depthwise else ''}, {h}x{w}x{c} -> "
                f"{oh}x{ow}x{co}, {layer.weight_dtype} weights x {layer.input_dtype} inputs -> "
                f"{layer.out_dtype}, window kernel {self.kernel} */\n"
                + self.window.arrays_c()
                + f"const qnn_conv_t {name} = {{\n{self.window.initializer_c()},\n"
                f"    {{{h}, {w}, {c}, {oh}, {ow}, {kh}, {kw}, {sh}, {sw}, {top}, {left}}},\n"
                f"    {self.pad_code}, QNN_CONV_{KERNEL[self.kernel]}\n}};\n")

    def declaration_c(self, name: str) -> str:
        return f"extern const qnn_conv_t {name};"

    def call_c(self, name: str, xs: Sequence[str], y: str, scratch: str) -> str:
        (x,) = xs
        return f"qnn_conv2d(&{name}, {x}, {y}, (uint32_t *)({scratch}));"

    def size_row(self) -> dict[str, Any]:
        layer = self.layer
        return {
            "name": layer.name, "kernel": f"qnn_conv2d ({self.kernel} windows)",
            **({"kernel_choice": self.why} if self.why else {}),
            "in": layer.in_features, "out": layer.out_features,
            "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
            "input": str(layer.input_dtype), "weight": str(layer.weight_dtype),
            "output": str(layer.out_dtype), "macs": self.macs,
            "weight_bits_stored": self.window.weight_bits, "weights_bytes": self.weight_bytes,
            "threshold_bytes": self.threshold_bytes + self.bias_bytes,
            "scratch_bytes": self.scratch_bytes,
        }


def plan_layer(i: int, layer: Conv2dLayer, bits_out: bool = False, in_pixel: int = 0,
               compact: bool = False) -> ConvPlan:
    """The window's kernel and constants (see the module's docstring)."""
    at = f"layer {i} ({layer.name}, from {layer.source})"
    h, w, c = layer.in_shape
    if max(h, w, c, *layer.out_shape) > 0xFFFF or max(*layer.kernel, *layer.stride) > 255:
        raise FirmwareError(f"{at}: frame {layer.in_shape} -> {layer.out_shape}, kernel "
                            f"{layer.kernel}, stride {layer.stride} exceed the C types")
    x_off = storage_offset(layer.input_dtype)
    pad_code = 0 if layer.input_dtype.is_bipolar else layer.pad_value - x_off
    win = dense.plan_layer(i, window_layer(layer), compact, bits_out)
    act = layer.activation
    thresholds = None
    if isinstance(act, Thresholds):  # on the accumulator itself, clipped past its range
        thresholds = np.clip(act.values, layer.acc_min,
                             layer.acc_max + 1).astype(np.int32)
    if layer.depthwise:
        wt = layer.weights.reshape(c, -1).astype(np.int64)
        corrections = x_off * wt.sum(axis=1)
        bias = requant_bias(act, corrections, at) if isinstance(act, Requant) \
            else int32_or_none(corrections if corrections.any() else None, at)
        win = replace(win, kernel="depthwise", weights=wt.astype(np.int16), weight_bits=16,
                      w_offset=0, thresholds=thresholds, bias=bias)
        return ConvPlan(i, layer, win, "depthwise", pad_code)
    if win.kernel == "int8_pairs" and c < PAIRS_MIN_CHANNELS:
        win = replace(dense.plan_layer(i, window_layer(layer), True, bits_out),
                      why=f"{c} input channel(s): pairs would pad each pixel to 4 channels")
    if win.kernel == "int8_pairs":  # pairs pixel by pixel, rows in blocks of 4
        win = replace(win, weights=conv_pair_words(layer.weights.astype(np.int64)
                                                   - win.w_offset))
    if win.kernel in ("xnor", "xnor_sliced"):  # its plan's bias: the requantization's, or none
        co, taps = layer.out_channels, layer.kernel[0] * layer.kernel[1]
        packed = pack_bits(layer.weights.reshape(co * taps, c)).reshape(co, -1)
        win = replace(win, weights=packed, thresholds=thresholds)
        if win.kernel == "xnor_sliced":
            # acc = real taps - 2 mismatches >= t <=> 2 mismatches + (t + in) <= real + in
            assert thresholds is not None
            n = layer.window
            win = dense.sliced(win, packed, np.clip(thresholds[:, 0].astype(np.int64) + n, 0,
                                                    2 * n + 1), 1)
    return ConvPlan(i, layer, win, win.kernel, pad_code, win.why)
