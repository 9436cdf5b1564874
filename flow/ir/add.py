"""The join of a residual network: two code streams of one shape added element by element,
then the activation quantizer after the add (ReLU and a QuantReLU in Brevitas' blocks):

    acc[e] = WA * a[e] + WB * b[e]       (a: the first input's codes, b: the second's)
    y[e]   = activation_c(acc[e])        (c: the element's channel)

WA and WB align the inputs' scales: 1 and 1 where one quantizer made both, as Brevitas'
shared quantizers do; a power of two where the scales differ by one, both exact; otherwise
integers whose ratio approximates the scales' (onnxruntime's QDQ adds), the layer then
declared inexact with `alignment_slack`, the most accumulator units the float graph's sum
may lie from the accumulator's value. The inputs' zero
points are folded into the activation's thresholds or bias by lowering, so every backend
computes WA * a + WB * b only. The frame is channel-last (H, W, C); a flat vector is a 1x1
frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from flow.datatypes import DataType, dtype
from flow.ir.activation import (
    Activation,
    activation_from_json,
    activation_to_json,
    check_activation,
)
from flow.ir.conv import Frames, as_triple
from flow.ir.layer import Activated, ChannelWise, Folding, Get, IRError, Put

MAX_INPUT_WEIGHT = 2**16  # an alignment factor beyond this is no residual add


@dataclass
class AddLayer(Frames, Activated, ChannelWise):
    kind: ClassVar[str] = "add"
    weighted: ClassVar[bool] = False
    arity: ClassVar[int] = 2  # the layer kinds that read two streams
    name: str
    source: str
    in_shape: tuple[int, int, int]  # H, W, C of each input and the output
    out_shape: tuple[int, int, int]
    input_dtype: DataType  # the first input's codes
    other_dtype: DataType  # the second input's
    input_weights: tuple[int, int]  # WA, WB
    acc_min: int
    acc_max: int
    activation: Activation | None
    folding: Folding = field(default_factory=Folding)
    # how many accumulator units the float graph's sum may lie from the accumulator's own
    # value where WA : WB only approximates the inputs' scale ratio (0: aligned exactly)
    alignment_slack: int = 0

    @property
    def input_dtypes(self) -> tuple[DataType, DataType]:
        return self.input_dtype, self.other_dtype

    @property
    def cycles(self) -> int:
        """One beat of PE channels a cycle: every element is read from both inputs once."""
        return self.in_features // self.folding.pe

    def worst_case(self) -> tuple[int, int]:
        """The accumulator's range over every pair of input codes."""
        ends = [w * v for w, t in zip(self.input_weights, self.input_dtypes, strict=True)
                for v in (t.min, t.max)]
        return (min(ends[0], ends[1]) + min(ends[2], ends[3]),
                max(ends[0], ends[1]) + max(ends[2], ends[3]))

    def check(self, at: str) -> None:
        if tuple(self.in_shape) != tuple(self.out_shape):
            raise IRError(f"{at}: an add keeps its shape {self.in_shape} (output has "
                          f"{self.out_shape})")
        for t in self.input_dtypes:
            if t.is_bipolar:
                raise IRError(f"{at}: BIPOLAR inputs to an add are not supported")
        if any(not isinstance(w, int) or w == 0 or abs(w) > MAX_INPUT_WEIGHT
               for w in self.input_weights) or len(self.input_weights) != 2:
            raise IRError(f"{at}: input weights {self.input_weights} must be two nonzero "
                          f"integers of magnitude at most {MAX_INPUT_WEIGHT}")
        lo, hi = self.worst_case()
        if lo < self.acc_min or hi > self.acc_max:
            raise IRError(f"{at}: accumulator bound [{self.acc_min}, {self.acc_max}] is "
                          f"narrower than the worst case [{lo}, {hi}]")
        if self.activation is None:
            raise IRError(f"{at}: an add needs its activation quantizer")
        if not isinstance(self.alignment_slack, int) or self.alignment_slack < 0:
            raise IRError(f"{at}: alignment slack {self.alignment_slack} must be an integer >= 0")
        check_activation(self.activation, at, self.out_channels, self.acc_min, self.acc_max)
        self.check_folding(at, self.folding)

    def to_json(self, put: Put) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape), "out_shape": list(self.out_shape),
            "in_features": self.in_features, "out_features": self.out_features,
            "input_dtype": self.input_dtype.name, "other_dtype": self.other_dtype.name,
            "input_weights": list(self.input_weights), "alignment_slack": self.alignment_slack,
            "acc_min": int(self.acc_min), "acc_max": int(self.acc_max),
            "acc_dtype": self.acc_dtype.name,
            "activation": activation_to_json(self.activation, self.name, put),
            "out_dtype": self.out_dtype.name,
            "folding": {"pe": self.folding.pe, "simd": self.folding.simd},
            "cycles": self.cycles,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> AddLayer:
        return cls(name=d["name"], source=d["source"], in_shape=as_triple(d["in_shape"]),
                   out_shape=as_triple(d["out_shape"]), input_dtype=dtype(d["input_dtype"]),
                   other_dtype=dtype(d["other_dtype"]),
                   input_weights=tuple(int(w) for w in d["input_weights"]),  # type: ignore[arg-type]
                   acc_min=int(d["acc_min"]), acc_max=int(d["acc_max"]),
                   activation=activation_from_json(d["activation"], get),
                   folding=Folding(pe=int(d["folding"]["pe"]), simd=int(d["folding"]["simd"])),
                   alignment_slack=int(d["alignment_slack"]))


def add_accumulators(layer: AddLayer, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """acc = WA * a + WB * b, int64, on codes of any matching shape."""
    wa, wb = layer.input_weights
    return wa * np.asarray(a, np.int64) + wb * np.asarray(b, np.int64)
