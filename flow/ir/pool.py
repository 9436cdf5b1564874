"""Max pooling on codes: y[oy, ox, c] = max over the window of x, channel-last frames.

Exact after a monotone (non-decreasing) activation quantizer, where max commutes with the
quantizer: the lowering places it on codes only there. Padding never wins: a padded tap
counts as the type's minimum (ONNX pads MaxPool with -inf), and ONNX's ceil_mode becomes
extra bottom/right padding. For BIPOLAR codes (bit 1 = +1) the max is an OR of bits.
A pool has no weights, accumulator or activation: its output type is its input type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from flow.datatypes import DataType, dtype
from flow.ir.activation import Activation
from flow.ir.conv import Frames, Pads, as_pads, as_pair, as_triple, check_window
from flow.ir.layer import Folding, Get, IRError, Put


@dataclass
class MaxPoolLayer(Frames):
    kind: ClassVar[str] = "maxpool"
    weighted: ClassVar[bool] = False
    name: str
    source: str
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]  # OH, OW, C
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads
    input_dtype: DataType
    folding: Folding = field(default_factory=Folding)
    activation: Activation | None = None  # pools pass codes through: always None

    @property
    def pe_dim(self) -> int:
        return self.out_channels

    @property
    def simd_dim(self) -> int:
        return 1

    @property
    def acc_min(self) -> int:
        return self.input_dtype.min

    @property
    def acc_max(self) -> int:
        return self.input_dtype.max

    @property
    def acc_dtype(self) -> DataType:
        return self.input_dtype

    @property
    def out_dtype(self) -> DataType:
        return self.input_dtype

    @property
    def cycles(self) -> int:
        """Cycles per frame of a streaming pool (sliding window + max), PE channels at a
        time: every window's taps are read, and every input pixel written, one a cycle (equal
        when windows tile the frame: kernel = stride, no padding)."""
        windows = self.out_shape[0] * self.out_shape[1] * self.kernel[0] * self.kernel[1]
        pixels = self.in_shape[0] * self.in_shape[1]
        return max(windows, pixels) * (self.out_channels // self.folding.pe)

    def check(self, at: str) -> None:
        if self.out_shape[2] != self.in_shape[2]:
            raise IRError(f"{at}: a pool keeps its {self.in_shape[2]} channels "
                          f"(output has {self.out_shape[2]})")
        check_window(at, self.in_shape, self.out_shape, self.kernel, self.stride, self.pads)
        if self.activation is not None:
            raise IRError(f"{at}: a max pool has no activation")
        f = self.folding
        if f.pe < 1 or f.simd != 1 or self.pe_dim % f.pe:
            raise IRError(f"{at}: PE {f.pe} must divide {self.pe_dim} channels (SIMD 1, "
                          f"found {f.simd})")

    def to_json(self, put: Put) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
            "in_features": self.in_features, "out_features": self.out_features,
            "kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads),
            "input_dtype": self.input_dtype.name, "out_dtype": self.out_dtype.name,
            "folding": {"pe": self.folding.pe, "simd": self.folding.simd},
            "cycles": self.cycles,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> MaxPoolLayer:
        return cls(name=d["name"], source=d["source"], in_shape=as_triple(d["in_shape"]),
                   out_shape=as_triple(d["out_shape"]), kernel=as_pair(d["kernel"]),
                   stride=as_pair(d["stride"]), pads=as_pads(d["pads"]),
                   input_dtype=dtype(d["input_dtype"]),
                   folding=Folding(pe=int(d["folding"]["pe"]), simd=int(d["folding"]["simd"])))
