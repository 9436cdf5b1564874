"""Fixtures of tests/flow: private copies of the exported default build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flow.train.trainer import TRAIN_FILES


@pytest.fixture
def build(digits_build: Path, tmp_path: Path) -> Path:
    """A private copy of the exported default build (tmp_path/b)."""
    return Path(shutil.copytree(digits_build, tmp_path / "b", symlinks=True))


@pytest.fixture
def compiled(build: Path) -> Path:
    """The same build as `qflow compile` leaves it (no training files: compile may replace it)."""
    for f in TRAIN_FILES:
        (build / f).unlink(missing_ok=True)
    return build
