"""What every weighted layer kind (dense, conv2d) writes to and reads from ir.json beside its
own geometry: types, weights, accumulator bounds, activation, folding."""

from __future__ import annotations

from typing import Any

from flow.datatypes import dtype
from flow.ir.activation import activation_from_json, activation_to_json
from flow.ir.layer import Folding, Get, Put


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
