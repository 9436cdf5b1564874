"""The dense layer: acc[o] = sum_i W[o, i] * x[i], then thresholds (or, last, the output).

BIPOLAR values are -1/+1 (step 2, base -1); hardware stores them as one bit, 1 for +1, and
an XNOR-popcount datapath sees popcount = (acc + in_features) / 2 (`popcount_thresholds`).
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
    Thresholds,
    dtype_range,
)
from flow.ir.weighted import Weighted, weighted_from_json, weighted_to_json


@dataclass
class DenseLayer(Weighted):
    kind: ClassVar[str] = "dense"
    weighted: ClassVar[bool] = True
    name: str
    source: str  # QONNX node it was lowered from, for messages
    in_features: int
    out_features: int
    input_dtype: DataType
    weight_dtype: DataType
    weights: np.ndarray  # int [out_features, in_features]
    acc_min: int
    acc_max: int
    activation: Activation | None
    folding: Folding = field(default_factory=Folding)

    @property
    def fan_in(self) -> int:
        """Products summed into one output value (the cost model's unit): the inputs."""
        return self.in_features

    @property
    def out_channels(self) -> int:
        return self.out_features

    @property
    def pe_dim(self) -> int:
        return self.out_features

    @property
    def simd_dim(self) -> int:
        return self.in_features

    @property
    def cycles(self) -> int:
        """Cycles per input vector at this folding: (out / PE) x (in / SIMD)."""
        return (self.out_features // self.folding.pe) * (self.in_features // self.folding.simd)

    def check(self, at: str) -> None:
        w = self.weights
        if w.shape != (self.out_features, self.in_features):
            raise IRError(f"{at}: weights {w.shape}, expected {(self.out_features, self.in_features)}")
        self.check_weighted(at, dtype_range(self.input_dtype), self.pe_dim, self.simd_dim)

    def to_json(self, put: Put) -> dict[str, Any]:
        return weighted_to_json(self, put)

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> DenseLayer:
        return cls(in_features=int(d["in_features"]), out_features=int(d["out_features"]),
                   **weighted_from_json(d, get))


def popcount_thresholds(layer: DenseLayer) -> np.ndarray:
    """Thresholds on popcount(XNOR) for a BIPOLAR x BIPOLAR layer.

    acc = 2 * popcount - in_features, so acc >= T  <=>  popcount >= ceil((T + in) / 2).
    """
    act = layer.activation
    if not layer.is_xnor or not isinstance(act, Thresholds):
        raise IRError(f"layer {layer.name}: popcount thresholds need BIPOLAR x BIPOLAR + thresholds")
    t = act.values + layer.in_features
    return -((-t) // 2)  # ceil division for negative values too
