"""The 2-D convolution: a dense layer applied to every window of a channel-last frame.

Frames between layers are flat vectors in channel-last order (H, W, C): the order a
streaming accelerator and the firmware walk them. A window is read in (kh, kw, c) order,
so the weights are [C_out, kh, kw, C_in / group] and a window times a weight row is one
dot product, exactly as in a dense layer:

    acc[oy, ox, o] = sum_{ky, kx, c} W[o, ky, kx, c] * xp[oy*sy + ky, ox*sx + kx, g(o)*Cg + c]

where xp is the frame padded with `pad_value` (top, left, bottom, right) and g(o) the
output channel's group. `pad_value` is the code of the float graph's padding zero: the
input's zero point, and 0 for BIPOLAR (a padded tap contributes nothing; hardware that
stores BIPOLAR codes as bits must mask padded taps rather than pad with -1 or +1). Pads
may be as wide as the kernel: a window of padding only accumulates the pad value.
`group` is 1 or the channel count (depthwise, one output channel per input channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from flow.datatypes import DataType
from flow.ir.activation import (
    Activation,
)
from flow.ir.layer import (
    Folding,
    Get,
    IRError,
    Put,
)
from flow.ir.weighted import Weighted, weighted_from_json, weighted_to_json

Pads = tuple[int, int, int, int]  # top, left, bottom, right


def window_output(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Output positions along one axis of a sliding window (floor, as ONNX's default)."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def check_window(at: str, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                 kernel: tuple[int, int], stride: tuple[int, int], pads: Pads) -> None:
    """Shared invariants of convolution and pooling windows."""
    if min(kernel) < 1 or min(stride) < 1 or min(pads) < 0 or min(in_shape) < 1:
        raise IRError(f"{at}: kernel {kernel}, stride {stride}, pads {pads} and input "
                      f"{in_shape} must be positive (pads non-negative)")
    oh = window_output(in_shape[0], kernel[0], stride[0], pads[0], pads[2])
    ow = window_output(in_shape[1], kernel[1], stride[1], pads[1], pads[3])
    if oh < 1 or ow < 1 or (oh, ow) != out_shape[:2]:
        raise IRError(f"{at}: input {in_shape[:2]} with kernel {kernel}, stride {stride}, "
                      f"pads {pads} gives {oh}x{ow} positions, not {out_shape[:2]}")


def padding_only(in_shape: tuple[int, int, int], kernel: tuple[int, int],
                 stride: tuple[int, int], pads: Pads) -> bool:
    """Whether some window holds padding only: the first (a leading pad as wide as the
    kernel) or the last (starting past the frame) along an axis."""
    for size, k, s, before, after in ((in_shape[0], kernel[0], stride[0], pads[0], pads[2]),
                                      (in_shape[1], kernel[1], stride[1], pads[1], pads[3])):
        last = (window_output(size, k, s, before, after) - 1) * s - before
        if before >= k or last >= size:
            return True
    return False


class Frames:
    """The sizes of a layer that maps one channel-last frame to another."""

    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]

    @property
    def in_features(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_features(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def out_channels(self) -> int:
        return self.out_shape[2]


@dataclass
class Conv2dLayer(Frames, Weighted):
    kind: ClassVar[str] = "conv2d"
    weighted: ClassVar[bool] = True
    name: str
    source: str
    in_shape: tuple[int, int, int]  # H, W, C_in (channel-last)
    out_shape: tuple[int, int, int]  # OH, OW, C_out
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads
    pad_value: int
    group: int  # 1, or C_in for depthwise
    input_dtype: DataType
    weight_dtype: DataType
    weights: np.ndarray  # int [C_out, kh, kw, C_in / group]
    acc_min: int
    acc_max: int
    activation: Activation | None
    folding: Folding = field(default_factory=Folding)

    @property
    def depthwise(self) -> bool:
        return self.group > 1

    @property
    def window(self) -> int:
        """Taps of one output channel's dot product: kh * kw * C_in / group."""
        return int(np.prod(self.weights.shape[1:]))

    @property
    def fan_in(self) -> int:
        """Products summed into one output value (the cost model's unit): the window."""
        return self.window

    @property
    def pe_dim(self) -> int:
        return self.out_channels

    @property
    def simd_dim(self) -> int:
        """SIMD lanes run over a window's input channels (FINN's MVAU convention). A
        depthwise layer's channels are its PE: the window unit carries PE channels a beat
        and each lane reduces its own channel's taps one a cycle, so its SIMD is 1."""
        return 1 if self.depthwise else self.in_shape[2]

    @property
    def cycles(self) -> int:
        """Cycles per frame of a streaming conv (sliding window + MVAU or VVAU): every
        output position takes (C_out / PE) x (window / SIMD); the window unit also reads
        each input pixel once, C_in / lanes beats (lanes: SIMD, or PE for depthwise), which
        bounds it when the stride exceeds the kernel."""
        f = self.folding
        compute = self.out_shape[0] * self.out_shape[1] * (self.out_channels // f.pe) * (
            self.window // f.simd)
        lanes = f.pe if self.depthwise else f.simd
        return max(compute, self.in_shape[0] * self.in_shape[1] * (self.in_shape[2] // lanes))

    def input_bounds(self) -> tuple[int, int]:
        """The values a window tap takes: the input type's and the pad value."""
        t = self.input_dtype
        if not any(self.pads):
            return t.min, t.max
        return min(t.min, self.pad_value), max(t.max, self.pad_value)

    def check(self, at: str) -> None:
        h, w, c = self.in_shape
        kh, kw = self.kernel
        co = self.out_channels
        if self.group not in (1, c) or (self.group > 1 and co != c):
            raise IRError(f"{at}: group {self.group} must be 1 or the channel count {c} "
                          f"(depthwise, as many outputs as inputs)")
        check_window(at, self.in_shape, self.out_shape, self.kernel, self.stride, self.pads)
        expected = (co, kh, kw, c // self.group)
        wts = self.weights
        if wts.shape != expected:
            raise IRError(f"{at}: weights {wts.shape}, expected {expected} "
                          "(C_out, kh, kw, C_in / group)")
        t = self.input_dtype
        zero_ok = t.is_bipolar and self.pad_value == 0
        if any(self.pads) and not zero_ok and not t.contains(self.pad_value, self.pad_value):
            raise IRError(f"{at}: pad value {self.pad_value} is not a {t} code")
        self.check_weighted(at, self.input_bounds(), self.pe_dim, self.simd_dim)

    def to_json(self, put: Put) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
            "kernel": list(self.kernel), "stride": list(self.stride), "pads": list(self.pads),
            "pad_value": int(self.pad_value), "group": self.group,
            **weighted_to_json(self, put),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> Conv2dLayer:
        return cls(in_shape=as_triple(d["in_shape"]), out_shape=as_triple(d["out_shape"]),
                   kernel=as_pair(d["kernel"]), stride=as_pair(d["stride"]),
                   pads=as_pads(d["pads"]), pad_value=int(d["pad_value"]), group=int(d["group"]),
                   **weighted_from_json(d, get))


def as_pair(v: list[int]) -> tuple[int, int]:
    a, b = (int(x) for x in v)
    return a, b


def as_triple(v: list[int]) -> tuple[int, int, int]:
    a, b, c = (int(x) for x in v)
    return a, b, c


def as_pads(v: list[int]) -> Pads:
    a, b, c, d = (int(x) for x in v)
    return a, b, c, d
