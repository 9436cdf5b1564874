"""Integer codes packed into words: one implementation for every generator.

Hardware and firmware store a value of datatype t in a field of t.bits bits: BIPOLAR as one
bit (1 = +1, 0 = -1), every other type in two's complement. A word holds fields side by
side, field 0 in the least significant bits.
"""

from __future__ import annotations

import numpy as np

from flow.datatypes import DataType


def encode(values: np.ndarray, t: DataType) -> np.ndarray:
    """Integer values of datatype t -> their unsigned field codes (int64)."""
    v = np.asarray(values, dtype=np.int64)
    if t.is_bipolar:
        return (v > 0).astype(np.int64)
    return v & ((1 << t.bits) - 1)


def pack_words(fields: np.ndarray, bits: int) -> list[int]:
    """Rows of unsigned fields [N, E] -> N integers, field k at bits [k*bits, (k+1)*bits)."""
    fields = np.asarray(fields, dtype=np.uint64)
    n, e = fields.shape
    planes = (fields[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    packed = np.packbits(planes.reshape(n, e * bits).astype(np.uint8), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_words(words: list[int], elems: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of pack_words: [N, elems] int64; signed fields are sign-extended."""
    nbytes = (elems * bits + 7) // 8
    raw = np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words), dtype=np.uint8)
    planes = np.unpackbits(raw.reshape(len(words), nbytes), axis=1, bitorder="little")
    planes = planes[:, : elems * bits].reshape(len(words), elems, bits).astype(np.int64)
    v = (planes << np.arange(bits)).sum(axis=2)
    return v - ((v >> (bits - 1)) << bits) if signed else v


def hex_digits(bits: int) -> int:
    return (bits + 3) // 4


def mem_image(words: list[int], width: int) -> str:
    """A $readmemh image: one word of `width` bits a line, zero-padded hex."""
    digits = hex_digits(width)
    return "".join(f"{w:0{digits}x}\n" for w in words)


def hex_words(fields: np.ndarray, bits: int) -> np.ndarray:
    """Fields [..., k] of `bits` bits each -> "0x..." strings [...] (C/C++ literals), one
    word of k fields each, zero-padded to whole hex digits."""
    fields = np.asarray(fields)
    lead, k = fields.shape[:-1], fields.shape[-1]
    words = pack_words(fields.reshape(-1, k), bits) if fields.size else []
    digits = hex_digits(k * bits)
    return np.array([f"0x{w:0{digits}x}" for w in words], dtype=object).reshape(lead).astype(str)
