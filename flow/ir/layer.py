"""What every IR layer kind shares: errors, folding, threshold activations, bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from flow.datatypes import DataType, bits_for_range, dtype

if TYPE_CHECKING:
    from flow.ir.activation import Activation


# The largest tensors the IR holds, checked by lowering before anything of their size is
# allocated: a stream (the input, a layer's output) of one sample, and a stored tensor (a
# layer's weights). Every backend holds a whole frame per layer (firmware's arena, the RTL's
# line buffers, the golden model's batch) and every weight (ROM, flash); the largest models
# built (CNV: 64x30x30 = 57,600 values, LFC: 1,048,576 weights) are far below.
MAX_TENSOR_VALUES = 2**22
MAX_WEIGHT_VALUES = 2**24


class IRError(ValueError):
    """A malformed or inconsistent IR; the message names the file and the layer."""


@dataclass
class Folding:
    """PE output channels and SIMD input lanes in parallel."""

    pe: int = 1
    simd: int = 1


@dataclass
class Thresholds:
    """Per-output-channel thresholds: y = base + step * #{j : acc >= T[o, j]}."""

    values: np.ndarray  # int64 [out_channels, n_thresholds], non-decreasing along axis 1
    base: int
    step: int
    out_dtype: DataType

    @property
    def count(self) -> int:
        return int(self.values.shape[1])

    def check(self, at: str, channels: int) -> None:
        if self.values.shape[0] != channels:
            raise IRError(f"{at}: thresholds for {self.values.shape[0]} channels, not {channels}")
        if np.any(np.diff(self.values, axis=1) < 0):
            raise IRError(f"{at}: thresholds not sorted")
        if self.out_dtype.is_bipolar and (self.base, self.step, self.count) != (-1, 2, 1):
            raise IRError(f"{at}: a BIPOLAR activation is one threshold with base -1, step 2 "
                          f"(found {self.count} thresholds, base {self.base}, step {self.step})")
        if self.step < 1:
            raise IRError(f"{at}: activation step {self.step} must be positive")
        top = self.base + self.step * self.count
        if not self.out_dtype.contains(min(self.base, top), max(self.base, top)):
            raise IRError(f"{at}: activation levels do not fit {self.out_dtype}")


class Activated:
    """A layer whose accumulator (acc_min..acc_max) goes through its activation (none: the
    accumulators leave it)."""

    acc_min: int
    acc_max: int
    activation: Any  # flow.ir.activation.Activation | None

    @property
    def acc_dtype(self) -> DataType:
        return dtype(f"INT{bits_for_range(min(self.acc_min, -1), self.acc_max)}")

    @property
    def out_dtype(self) -> DataType:
        return self.activation.out_dtype if self.activation else self.acc_dtype


class ChannelWise:
    """A layer that works on each channel of a frame alone: PE divides its channels, and it
    has no input lanes to fold (SIMD 1)."""

    @property
    def out_channels(self) -> int:
        raise NotImplementedError  # the layer's shape says (flow.ir.conv.Frames)

    @property
    def pe_dim(self) -> int:
        return self.out_channels

    @property
    def simd_dim(self) -> int:
        return 1

    def check_folding(self, at: str, folding: Folding) -> None:
        if folding.pe < 1 or folding.simd != 1 or self.pe_dim % folding.pe:
            raise IRError(f"{at}: PE {folding.pe} must divide {self.pe_dim} channels (SIMD 1, "
                          f"found {folding.simd})")


# Stores an array in ir.npz under a key and returns the key (for ir.json).
Put = Callable[[str, np.ndarray], str]
# Reads an array named in ir.json from ir.npz.
Get = Callable[[str], np.ndarray]


class Layer(Protocol):
    """The interface every layer kind offers to the model and to every stage."""

    kind: ClassVar[str]
    weighted: ClassVar[bool]  # a weighted layer accumulates; others (pools) pass codes on
    name: str
    source: str
    input_dtype: DataType
    activation: Activation | None
    folding: Folding

    @property
    def acc_min(self) -> int: ...  # the accumulator's worst case over every input of input_dtype

    @property
    def acc_max(self) -> int: ...

    @property
    def in_features(self) -> int: ...  # values per input frame (all positions, channels)

    @property
    def out_features(self) -> int: ...

    @property
    def out_channels(self) -> int: ...  # the output stage's and thresholds' channel axis

    @property
    def pe_dim(self) -> int: ...  # the axis PE divides (output channels)

    @property
    def simd_dim(self) -> int: ...  # the axis SIMD divides (input lanes of one output)

    @property
    def out_dtype(self) -> DataType: ...

    @property
    def acc_dtype(self) -> DataType: ...

    @property
    def cycles(self) -> int: ...  # cycles per frame at this folding

    def check(self, at: str) -> None: ...  # this layer's own invariants

    def to_json(self, put: Put) -> dict[str, Any]: ...


def dtype_range(t: DataType) -> tuple[int, int]:
    return t.min, t.max


def accumulator_bounds(weights: np.ndarray, x_min: int, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row worst-case accumulator range of weights [rows, fan_in] over all inputs in
    [x_min, x_max]."""
    w = weights.astype(np.int64)
    lo = np.minimum(w * x_min, w * x_max).sum(axis=1)
    hi = np.maximum(w * x_min, w * x_max).sum(axis=1)
    return lo, hi


def thresholds_to_json(act: Thresholds | None, name: str, put: Put) -> dict[str, Any] | None:
    if act is None:
        return None
    return {"kind": "thresholds", "thresholds": put(f"{name}.thresholds", act.values),
            "count": act.count, "base": act.base, "step": act.step,
            "out_dtype": act.out_dtype.name}


def thresholds_from_json(d: dict[str, Any] | None, get: Get) -> Thresholds | None:
    if d is None:
        return None
    if d.get("kind") != "thresholds":
        raise IRError(f"unknown activation kind {d.get('kind')!r}")
    return Thresholds(values=get(d["thresholds"]).astype(np.int64), base=int(d["base"]),
                      step=int(d["step"]), out_dtype=dtype(d["out_dtype"]))
