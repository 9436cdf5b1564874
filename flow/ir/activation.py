"""A weighted layer's activation: per-channel thresholds (exact for any monotone tail) or a
fixed-point requantization (flow/ir/requant.py), or none for the last layer."""

from __future__ import annotations

from typing import Any

from flow.ir.layer import Get, IRError, Put, Thresholds, thresholds_from_json, thresholds_to_json
from flow.ir.requant import Requant

Activation = Thresholds | Requant


def activation_to_json(act: Activation | None, name: str, put: Put) -> dict[str, Any] | None:
    if isinstance(act, Requant):
        return act.to_json(name, put)
    return thresholds_to_json(act, name, put)


def activation_from_json(d: dict[str, Any] | None, get: Get) -> Activation | None:
    if d is not None and d.get("kind") == Requant.kind:
        return Requant.from_json(d, get)
    return thresholds_from_json(d, get)


def check_activation(act: Activation, at: str, channels: int, acc_min: int, acc_max: int
                     ) -> None:
    act.check(at, channels)
    if isinstance(act, Requant):
        act.check_range(at, acc_min, acc_max)


def activation_form(act: Activation | None) -> str:
    """"thresholds", "requant", or "none" (the last layer): what a backend must implement."""
    if act is None:
        return "none"
    return Requant.kind if isinstance(act, Requant) else "thresholds"


def thresholds_of(layer: Any, stage: str) -> Thresholds | None:
    """The layer's thresholds, for a stage that implements no other activation form; an
    IRError naming the layer and the stage for a requantization."""
    act = layer.activation
    if isinstance(act, Requant):
        raise IRError(f"layer {layer.name} (from {layer.source or '?'}): requantization is not "
                      f"supported by {stage} yet (it takes thresholds)")
    return act
