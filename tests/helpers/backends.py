"""Across the backends: a random folding to build a model at, every backend against the
golden model, and `qflow check` held to one check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from flow import backends, golden
from flow.backends import registry
from flow.ir import Folding, Model


def random_folding(model: Model, rng: np.random.Generator) -> Model:
    """Any PE and SIMD that divide each layer's dimensions."""
    def divisor(n: int) -> int:
        return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))

    layers = [dataclasses.replace(layer, folding=Folding(divisor(layer.pe_dim),  # type: ignore[type-var]
                                                         divisor(layer.simd_dim)))
              for layer in model.layers]
    model = dataclasses.replace(model, layers=layers)
    model.validate(model.name)
    return model


def every_backend_equals_golden(model: Model, codes: np.ndarray, build_dir: Path) -> None:
    """RTL simulation, HLS csim and host firmware give golden's outputs."""
    want = golden.run_codes(model, codes)
    for name in backends.available_generators():
        assert np.array_equal(backends.run(name, model, build_dir / name, codes), want), name



def only_check(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """`qflow check` takes verify and the check `name` only: the other backends' records
    lose their check."""
    monkeypatch.setattr(registry, "BACKENDS", tuple(
        dataclasses.replace(b, check=None) if b.check and b.check.name != name else b
        for b in registry.BACKENDS))
