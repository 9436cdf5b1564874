"""The golden model as a backend, so `qflow run --backend golden` shares one path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow import golden
from flow.inputs import check_codes
from flow.ir import Model

LAYER_KINDS = golden.OPS
ACTIVATIONS = ("thresholds", "requant", "none")


def run(model: Model, build_dir: Path, codes: np.ndarray, **_: str) -> np.ndarray:
    return golden.run_codes(model, check_codes(model, codes))
