"""A small model's build folder for the hardware backends' hostile-use tests (their private
Verilator cache is the `private_cache` fixture, in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow import golden
from flow.backends import rtl
from flow.ir import Model
from flow.synthetic import random_codes, random_model


def small_model(seed: int = 0, name: str = "hostile") -> Model:
    return random_model([16, 8, 4], ["INT2", "INT2"], ["UINT2"], seed=seed, name=name)


def build_of(model: Model, folder: Path) -> Path:
    """A build folder as export leaves it: the IR and rtl/."""
    model.save(folder)
    rtl.generate(model, folder)
    return folder


def simulate_equals_golden(model: Model, build: Path, frames: int = 4, seed: int = 0) -> None:
    codes = random_codes(model, frames, seed=seed)
    np.testing.assert_array_equal(rtl.run(model, build, codes), golden.run_codes(model, codes))
