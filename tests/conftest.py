"""Shared fixtures: real models lowered to the IR, with input codes to run them on.

`tfc_w1a1`: Brevitas' BNN-PYNQ TFC-w1a1 (random weights, randomized batch norm) at
finn-examples' folding, 256 random 28x28 images. `digits_default`: the default config
trained briefly, with its whole test split. `w8a8_onnx`: a random w8a8 MLP (randomized
batch norm: float scales) exported to QONNX.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.ir import Model

# HLS C simulation on the built-in ap_int / hls::stream types unless asked otherwise: Xilinx's
# headers (auto-selected where installed) take ~4x longer to compile. The vendor-type tests
# choose them explicitly; QFLOW_HLS_TYPES=auto runs every HLS test on them.
os.environ.setdefault("QFLOW_HLS_TYPES", "fallback")

TFC_FOLDING = [(16, 49), (8, 8), (8, 8), (10, 8)]
ROOT = Path(__file__).resolve().parents[1]


def export_bnn_pynq(name: str, folder: Path, seed: int = 0) -> Path:
    import torch

    from flow.export import export_qonnx
    from flow.train.examples import bnn_pynq, input_shape

    return export_qonnx(bnn_pynq(name, seed), torch.rand(1, *input_shape(name)),
                        folder / f"{name}.onnx")


@pytest.fixture(scope="session")
def tfc_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bnn_pynq("tfc-w1a1", tmp_path_factory.mktemp("tfc"))


@pytest.fixture(scope="session")
def tfc_w1a1(tfc_onnx: Path) -> tuple[Model, np.ndarray]:
    from flow.folding import apply_folding
    from flow.lower import lower

    model = lower(tfc_onnx, name="tfc_w1a1")
    apply_folding(model, TFC_FOLDING)
    x = np.random.default_rng(0).random((256, 1, 28, 28), dtype=np.float32)
    return model, golden.quantize_input(model.input, x)


@pytest.fixture(scope="session")
def w8a8_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from flow.export import export_qonnx
    from tests.helpers.models import MLP_VARIANTS, random_mlp

    model = random_mlp(MLP_VARIANTS["w8a8"], seed=3)  # randomized batch norm: float scales
    return export_qonnx(model, torch.rand(1, 1, 8, 8), tmp_path_factory.mktemp("rq") / "m.onnx")


@pytest.fixture(scope="session")
def digits_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default config, trained for a few epochs and exported (all generators run)."""
    import yaml

    from flow.export import export_build
    from flow.train.trainer import train

    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["train"].update(epochs=3, float_baseline=False)
    folder = tmp_path_factory.mktemp("digits")
    path = folder / "digits_w1a1.yaml"
    path.write_text(yaml.safe_dump(cfg))
    train(path, folder / "build")
    export_build(folder / "build")
    return folder / "build"


@pytest.fixture(scope="session")
def digits_default(digits_build: Path) -> tuple[Model, np.ndarray]:
    from flow.inputs import test_codes
    from flow.ir import load

    model = load(digits_build)
    return model, test_codes(model)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Verilator build cache for one test (flow.backends.rtl.simcache)."""
    from flow.backends.rtl import simcache

    cache = tmp_path / "cache"
    monkeypatch.setenv(simcache.CACHE_ENV, str(cache))
    return cache
