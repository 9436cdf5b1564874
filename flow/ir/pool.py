"""Pooling on codes over the windows of a channel-last frame: max and average (a sum and
a power-of-two division).

Max pooling: y[oy, ox, c] = max over the window of x. Exact after a monotone
(non-decreasing) activation quantizer, where max commutes with the quantizer: the
lowering places it on codes only there. Padding never wins: a padded tap counts as the
type's minimum (ONNX pads MaxPool with -inf), and ONNX's ceil_mode becomes extra
bottom/right padding. For BIPOLAR codes (bit 1 = +1) the max is an OR of bits. A window of
padding only has no code to take the max of (ONNX gives -inf): refused.

Average pooling (Brevitas' TruncAvgPool2d: AveragePool or ReduceMean, then QONNX Trunc):

    acc[oy, ox, c] = sum over the window of x          (padded taps count 0)
    y[oy, ox, c]   = clamp(divide(acc, 2^shift), lo, hi)

where divide rounds half to even ("ROUND") or down ("FLOOR"), and a negative shift
multiplies by 2^-shift. The window's size never divides: Brevitas moves 1 / (kh * kw) into
the output's scale and keeps only the power-of-two truncation on codes.

A pool has no weights or activation; a max pool's output type is its input type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flow.datatypes import DataType, dtype, smallest_int_type
from flow.ir.activation import Activation
from flow.ir.conv import (
    Frames,
    Pads,
    as_pads,
    as_pair,
    as_triple,
    check_window,
    padding_only,
)
from flow.ir.layer import ChannelWise, Folding, Get, IRError, Put

ROUNDINGS = ("ROUND", "FLOOR")  # ROUND: half to even, as numpy's and QONNX's Trunc


@dataclass
class Pool(Frames, ChannelWise, ABC):
    """What max and average pooling share: the window over a frame, one channel each."""

    kind: ClassVar[str]
    weighted: ClassVar[bool] = False
    reduction: ClassVar[str]  # "max" or "sum": what a window's taps are reduced by
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
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def cycles(self) -> int:
        """Cycles per frame of a streaming pool (sliding window + reduction), PE channels at
        a time: every window's taps are read, and every input pixel written, one a cycle
        (equal when windows tile the frame: kernel = stride, no padding)."""
        windows = self.out_shape[0] * self.out_shape[1] * self.taps
        pixels = self.in_shape[0] * self.in_shape[1]
        return max(windows, pixels) * (self.out_channels // self.folding.pe)

    def check(self, at: str) -> None:
        if self.out_shape[2] != self.in_shape[2]:
            raise IRError(f"{at}: a pool keeps its {self.in_shape[2]} channels "
                          f"(output has {self.out_shape[2]})")
        check_window(at, self.in_shape, self.out_shape, self.kernel, self.stride, self.pads)
        if self.activation is not None:
            raise IRError(f"{at}: a pool has no activation")
        self.check_folding(at, self.folding)

    def to_json(self, put: Put) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
            "in_features": self.in_features, "out_features": self.out_features,
            "kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads),
            "input_dtype": self.input_dtype.name, "out_dtype": self.out_dtype.name,
            "folding": {"pe": self.folding.pe, "simd": self.folding.simd},
            "cycles": self.cycles,
        }

    @property
    @abstractmethod
    def out_dtype(self) -> DataType: ...

    @property
    @abstractmethod
    def acc_min(self) -> int: ...

    @property
    @abstractmethod
    def acc_max(self) -> int: ...

    @property
    @abstractmethod
    def acc_dtype(self) -> DataType: ...


def pool_fields(d: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments every pool reads from its ir.json entry."""
    return dict(name=d["name"], source=d["source"], in_shape=as_triple(d["in_shape"]),
                out_shape=as_triple(d["out_shape"]), kernel=as_pair(d["kernel"]),
                stride=as_pair(d["stride"]), pads=as_pads(d["pads"]),
                input_dtype=dtype(d["input_dtype"]),
                folding=Folding(pe=int(d["folding"]["pe"]), simd=int(d["folding"]["simd"])))


@dataclass
class MaxPoolLayer(Pool):
    kind: ClassVar[str] = "maxpool"
    reduction: ClassVar[str] = "max"

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

    def check(self, at: str) -> None:
        super().check(at)
        if padding_only(self.in_shape, self.kernel, self.stride, self.pads):
            raise IRError(f"{at}: pads {self.pads} leave a window of padding only, which has "
                          "no code to take the max of")

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> MaxPoolLayer:
        return cls(**pool_fields(d))


@dataclass(kw_only=True)
class AvgPoolLayer(Pool):
    kind: ClassVar[str] = "avgpool"
    reduction: ClassVar[str] = "sum"  # then a shift: free in hardware
    shift: int  # the sum divided by 2^shift (multiplied by 2^-shift when negative)
    rounding: str  # of that division: ROUND (half to even) or FLOOR
    clamp: tuple[int, int]  # the output codes' range (a narrow type's is one short)
    output_dtype: DataType

    @property
    def acc_min(self) -> int:
        """The window sum's worst case (a padded tap's 0 lies inside every type's range)."""
        return self.taps * min(self.input_dtype.min, 0)

    @property
    def acc_max(self) -> int:
        return self.taps * max(self.input_dtype.max, 0)

    @property
    def acc_dtype(self) -> DataType:
        return smallest_int_type(self.acc_min, self.acc_max)

    @property
    def out_dtype(self) -> DataType:
        return self.output_dtype

    def check(self, at: str) -> None:
        super().check(at)
        if self.rounding not in ROUNDINGS:
            raise IRError(f"{at}: rounding {self.rounding!r} is not one of "
                          f"{', '.join(ROUNDINGS)}")
        lo, hi = self.clamp
        if lo > hi or not self.output_dtype.contains(lo, hi):
            raise IRError(f"{at}: output range [{lo}, {hi}] is not inside {self.output_dtype}")
        if self.output_dtype.is_bipolar:
            raise IRError(f"{at}: an average pool's output cannot be BIPOLAR")
        if not -32 < self.shift < 32:
            raise IRError(f"{at}: shift {self.shift} must lie in -31..31")

    def to_json(self, put: Put) -> dict[str, Any]:
        return {**super().to_json(put), "shift": self.shift, "rounding": self.rounding,
                "clamp": list(self.clamp), "acc_dtype": self.acc_dtype.name}

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> AvgPoolLayer:
        return cls(**pool_fields(d), shift=int(d["shift"]), rounding=str(d["rounding"]),
                   clamp=as_pair(d["clamp"]), output_dtype=dtype(d["out_dtype"]))
