"""Integer datatypes of the IR: BIPOLAR, TERNARY, INTn and UINTn.

Hardware and firmware encode a BIPOLAR value as one bit (1 -> +1, 0 -> -1); every other
type is stored as its own integer value in two's complement (signed) or plain binary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DataType:
    name: str
    min: int
    max: int

    @property
    def signed(self) -> bool:
        return self.min < 0

    @property
    def bits(self) -> int:
        """Storage bits: 1 for BIPOLAR, 2 for TERNARY, n for INTn/UINTn."""
        if self.name == "BIPOLAR":
            return 1
        return bits_for_range(self.min, self.max)

    @property
    def is_bipolar(self) -> bool:
        return self.name == "BIPOLAR"

    def contains(self, lo: int, hi: int) -> bool:
        return self.min <= lo and hi <= self.max

    def __str__(self) -> str:
        return self.name


_INT_RE = re.compile(r"^(U?)INT(\d+)$")


def dtype(name: str) -> DataType:
    """The datatype named `name` (BIPOLAR, TERNARY, INT<n>, UINT<n>)."""
    if name == "BIPOLAR":
        return DataType("BIPOLAR", -1, 1)
    if name == "TERNARY":
        return DataType("TERNARY", -1, 1)
    m = _INT_RE.match(name)
    if not m or not 1 <= int(m.group(2)) <= 64:
        raise ValueError(f"unknown datatype {name!r} (expected BIPOLAR, TERNARY, INTn or UINTn)")
    n = int(m.group(2))
    if m.group(1):
        return DataType(name, 0, 2**n - 1)
    return DataType(name, -(2 ** (n - 1)), 2 ** (n - 1) - 1)


def bits_for_range(lo: int, hi: int) -> int:
    """Fewest bits of a two's complement (lo < 0) or unsigned integer holding [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max(int(-lo - 1).bit_length(), int(max(hi, 0)).bit_length()) + 1


def smallest_int_type(lo: int, hi: int) -> DataType:
    """The narrowest INTn (or UINTn when lo >= 0) holding [lo, hi]."""
    n = bits_for_range(lo, hi)
    return dtype(f"UINT{n}" if lo >= 0 else f"INT{n}")


def quant_dtype(bitwidth: int, signed: bool, narrow: bool) -> DataType:
    """The IR datatype holding a QONNX Quant node's integer codes."""
    if bitwidth == 2 and signed and narrow:
        return dtype("TERNARY")
    return dtype(f"INT{bitwidth}" if signed else f"UINT{bitwidth}")
