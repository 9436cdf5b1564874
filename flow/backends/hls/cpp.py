"""C++ text shared by the HLS generators: qflow types, identifiers, arrays, stream words."""

from __future__ import annotations

import re
from typing import NamedTuple

from flow.datatypes import DataType

MAX_BITS = 32  # qflow::kMaxBits: widest accumulator, weight and activation (exact in int64)
AP_INT_MAX_W = 4096  # widest ap_uint Vitis HLS allows (UG1399)


def cpp_type(t: DataType) -> str:
    """The qflow C++ type of an IR datatype (TERNARY is a 2-bit signed integer)."""
    if t.is_bipolar:
        return "qflow::bipolar"
    return f"qflow::{'int' if t.signed else 'uint'}_t<{t.bits}>"


def c_identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"m_{ident}"


def c_array(rows: list[list[str]], per_line: int = 8) -> str:
    """Nested braces for a 2-D array of C expressions."""
    out = []
    for row in rows:
        lines = [", ".join(row[i:i + per_line]) for i in range(0, len(row), per_line)]
        out.append("{" + ",\n ".join(lines) + "}")
    return "{" + ",\n".join(out) + "}"


def stream_word(elems: int, element_type: str) -> str:
    """The ap_uint of one stream word: `elems` packed fields of a qflow type."""
    return f"ap_uint<{elems} * {element_type}::bits>"


class ApWord(NamedTuple):
    """An ap_uint the generated C++ declares: what it is, its width, the file it is in
    (None: the top), so that a word too wide for Vitis can be named."""

    what: str
    bits: int
    file: str | None = None


def window_shape(in_shape: tuple[int, int, int], kernel: tuple[int, int],
                 stride: tuple[int, int], pads: tuple[int, int, int, int]) -> str:
    """The qflow::window_shape of a convolution's or pool's windows (hls/qflow_window.hpp)."""
    args = [*in_shape, *kernel, *stride, *pads]
    return f"qflow::window_shape<{', '.join(str(int(a)) for a in args)}>"
