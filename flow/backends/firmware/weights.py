"""The weight layouts the C kernels read (firmware/qnn_dense_*.c, qnn_conv*.c): packed bit
rows, int8 rows interleaved in blocks, int8 weight pairs for two MACs a multiply (rows of a
dense layer, or of a convolution pixel by pixel), index bytes of the BIPOLAR table kernel,
and the 32-lane transposition of the bit-sliced XNOR kernels."""

from __future__ import annotations

import numpy as np

from flow.datatypes import dtype
from flow.packing import encode, pack_words

INT8_ROWS = 8  # QNN_INT8_ROWS in qnn.h
TABLE_GROUP = 4  # inputs per lookup of qnn_dense_bipolar_table


def pack_rows(fields: np.ndarray, bits: int, word: str) -> np.ndarray:
    """Rows of unsigned `bits`-bit fields [out, in] -> each row packed by flow.packing
    (field k at bits [k*bits, (k+1)*bits), LSB first) and padded with zero bits to whole
    words of numpy type `word` ("<u4": 32-bit words, "u1": bytes): [out, words]."""
    size = np.dtype(word).itemsize
    nbytes = size * -(-fields.shape[1] * bits // (8 * size))
    rows = pack_words(fields, bits)
    data = b"".join(r.to_bytes(nbytes, "little") for r in rows)
    return np.frombuffer(data, dtype=word).reshape(len(rows), -1)


def pack_bits(w: np.ndarray) -> np.ndarray:
    """BIPOLAR rows -> uint32 words, LSB first, 1 for +1, tail bits 0."""
    return pack_rows(encode(w, dtype("BIPOLAR")), 1, "<u4")


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


CONV_PAIR_ROWS = 4  # rows of a block of qnn_conv_int8.c's four_by_four


def conv_pair_words(w: np.ndarray) -> np.ndarray:
    """Stored int8 convolution weights [out, kh, kw, C] -> QNN_CONV_INT8_PAIRS' words
    (pair_words): taps in (kx, ky) order, pairs within each pixel, its C padded with zero
    weights to a multiple of 4 (the kernel takes two pairs an iteration), rows padded with
    zero rows to a multiple of CONV_PAIR_ROWS, in blocks of CONV_PAIR_ROWS interleaved by
    pair; flat."""
    rows = -(-w.shape[0] // CONV_PAIR_ROWS) * CONV_PAIR_ROWS
    w = np.pad(np.asarray(w, np.int64).transpose(0, 2, 1, 3),
               ((0, rows - w.shape[0]), (0, 0), (0, 0), (0, -w.shape[3] % 4)))
    return interleave_rows(pair_words(w.reshape(rows, -1)), CONV_PAIR_ROWS)


def table_groups(n_in: int) -> int:
    """Groups of a qnn_dense_bipolar_table row as stored: ceil(in / 4), rows of more than 8
    groups padded to a multiple of 4 (the kernel's unrolled loop)."""
    g = -(-n_in // TABLE_GROUP)
    return g if g <= 8 else -(-g // 4) * 4


def table_weights(w: np.ndarray) -> np.ndarray:
    """BIPOLAR rows [out, in] -> qnn_dense_bipolar_table's index bytes [out, groups]: per
    group of 4 inputs 2 * s, bit k of s set where weight 4g + k is +1 (the byte offset of
    that sign pattern's int16 partial sum in the group's table)."""
    n_out, n_in = w.shape
    g = table_groups(n_in)
    plus = np.zeros((n_out, g * TABLE_GROUP), np.int64)
    plus[:, :n_in] = w > 0
    s = (plus.reshape(n_out, g, TABLE_GROUP) << np.arange(TABLE_GROUP)).sum(axis=2)
    return (2 * s).astype(np.uint8)


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


LANES = 32  # output channels of one pass of the bit-sliced XNOR kernels


def sliced_planes(n_in: int, shift: int) -> int:
    """Threshold planes per block of the bit-sliced kernels (qnn_sliced_planes in C): the
    bits of (mismatches << shift) + T, at most 2 * (n_in << shift) + 1."""
    return (2 * (n_in << shift) + 1).bit_length()


def transpose_lanes(words: np.ndarray) -> np.ndarray:
    """uint32 words [rows, n] -> per block of 32 rows, per column j, 32 words: bit r of
    word b is bit b of words[32 * block + r][j] (rows past the end: 0); flat."""
    rows, n = words.shape
    blocks = -(-rows // LANES)
    padded = np.zeros((blocks * LANES, n), np.uint64)
    padded[:rows] = words
    bit = np.arange(32, dtype=np.uint64)
    bits = (padded[:, :, None] >> bit) & 1  # [row, j, b]
    lanes = bits.reshape(blocks, LANES, n, 32) << bit[None, :, None, None]  # lane r at bit r
    return lanes.sum(axis=1).astype(np.uint32).reshape(-1)
