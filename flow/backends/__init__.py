"""Backends: each turns the IR into files (`generate`) and runs them (`run`).

A backend module defines
    LAYER_KINDS: the layer kinds it builds (a mapping or set of kind names);
    ACTIVATIONS: the activation forms it builds (flow.ir.activation_form: thresholds,
        requant, none);
    generate(model: flow.ir.Model, build_dir: Path) -> Path
        write its files into build_dir/<name>/ (atomically) and return that folder;
    run(model: flow.ir.Model, build_dir: Path, codes: np.ndarray, **options) -> np.ndarray
        integer input codes [N, features] -> the last layer's int64 accumulators [N, C],
        the codes checked first by flow.inputs.check_codes (InputError, nothing built);
        `options` come from its run target's record (e.g. the firmware's target).
Each backend is one record in flow.backends.registry (its run targets, whether export
generates it, its check, its report rows and sections, its subcommands).
Backends read the IR only; none imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import numpy as np

from flow.backends import registry
from flow.ir import Model, activation_form


def names() -> list[str]:
    """Every run target's name (`qflow run --backend`, `verify --backends`)."""
    return list(registry.targets())


def get(name: str) -> ModuleType:
    """The module of run target `name`'s backend."""
    targets = registry.targets()
    if name not in targets:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(targets)}")
    module = targets[name][0].module
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise ValueError(f"backend {name!r} is not available in this build of qflow") from e
        raise


def available_generators() -> list[str]:
    """The backends `qflow export` / `compile` generate, in order, whose module exists."""
    out = []
    for backend in registry.BACKENDS:
        if not backend.generated:
            continue
        try:
            get(backend.name)
        except ValueError:
            continue
        out.append(backend.name)
    return out


def unsupported(name: str, model: Model) -> list[str]:
    """What of the model backend `name` does not build (yet): layer kinds and activation
    forms, e.g. ["conv2d layers", "requant activations"]."""
    module = get(name)
    kinds = sorted({layer.kind for layer in model.layers} - set(module.LAYER_KINDS))
    forms = sorted({activation_form(layer.activation) for layer in model.layers}
                   - set(module.ACTIVATIONS))
    return [f"{k} layers" for k in kinds] + [f"{f} activations" for f in forms]


def run(name: str, model: Model, build_dir: Path, codes: np.ndarray) -> np.ndarray:
    """Run backend `name` on integer codes (each backend's run checks them against the
    input contract, flow.inputs.check_codes); returns the last layer's accumulators."""
    return get(name).run(model, build_dir, codes, **registry.targets()[name][1].options)
