"""What every weighted layer kind (dense, conv2d) shares beside its own geometry: types,
weights, accumulator bounds, activation and folding, their checks, and their ir.json
fields."""

from __future__ import annotations

from typing import Any

import numpy as np

from flow.datatypes import DataType, dtype
from flow.ir.activation import (
    Activation,
    activation_from_json,
    activation_to_json,
    check_activation,
)
from flow.ir.layer import Activated, Folding, Get, IRError, Put, accumulator_bounds


class Weighted(Activated):
    """Integer weights of `weight_dtype` on inputs of `input_dtype`, the accumulator's
    worst-case bounds, and the activation that maps it to output codes (none: the last
    layer)."""

    input_dtype: DataType
    weight_dtype: DataType
    weights: np.ndarray  # [out_channels, ...fan-in]
    acc_min: int
    acc_max: int
    activation: Activation | None
    folding: Folding

    @property
    def is_xnor(self) -> bool:
        return self.weight_dtype.is_bipolar and self.input_dtype.is_bipolar

    def check_weighted(self, at: str, x_bounds: tuple[int, int], pe_dim: int, simd_dim: int
                       ) -> None:
        """Weights of their type, accumulator bounds no narrower than the worst case over
        inputs in `x_bounds`, a folding that divides (pe_dim, simd_dim), the activation."""
        w = self.weights
        if w.size and (w.min() < self.weight_dtype.min or w.max() > self.weight_dtype.max):
            raise IRError(f"{at}: weights outside {self.weight_dtype}")
        if self.weight_dtype.is_bipolar and np.any(w == 0):
            raise IRError(f"{at}: BIPOLAR weights hold 0")
        lo, hi = accumulator_bounds(w.reshape(len(w), -1), *x_bounds)
        if w.size and (lo.min() < self.acc_min or hi.max() > self.acc_max):
            raise IRError(f"{at}: accumulator bound [{self.acc_min}, {self.acc_max}] "
                          f"is narrower than the worst case [{lo.min()}, {hi.max()}]")
        f = self.folding
        if f.pe < 1 or f.simd < 1 or pe_dim % f.pe or simd_dim % f.simd:
            raise IRError(f"{at}: PE {f.pe} / SIMD {f.simd} do not divide {pe_dim} output "
                          f"channels x {simd_dim} input lanes")
        if self.activation is not None:
            check_activation(self.activation, at, len(w), self.acc_min, self.acc_max)


def weighted_to_json(layer: Any, put: Put) -> dict[str, Any]:
    return {
        "in_features": layer.in_features, "out_features": layer.out_features,
        "input_dtype": layer.input_dtype.name, "weight_dtype": layer.weight_dtype.name,
        "weights": put(f"{layer.name}.weights", layer.weights),
        "acc_min": int(layer.acc_min), "acc_max": int(layer.acc_max),
        "acc_dtype": layer.acc_dtype.name,
        "activation": activation_to_json(layer.activation, layer.name, put),
        "out_dtype": layer.out_dtype.name,
        "folding": {"pe": layer.folding.pe, "simd": layer.folding.simd},
        "cycles": layer.cycles,
    }


def weighted_from_json(d: dict[str, Any], get: Get) -> dict[str, Any]:
    """The constructor arguments `weighted_to_json` wrote (and the layer's name, source)."""
    return {"name": d["name"], "source": d["source"], "input_dtype": dtype(d["input_dtype"]),
            "weight_dtype": dtype(d["weight_dtype"]), "weights": get(d["weights"]),
            "acc_min": int(d["acc_min"]), "acc_max": int(d["acc_max"]),
            "activation": activation_from_json(d["activation"], get),
            "folding": Folding(pe=int(d["folding"]["pe"]), simd=int(d["folding"]["simd"]))}
