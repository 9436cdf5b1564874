"""Write files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_with(path: Path, writer: Callable[[Path], object]) -> Path:
    """Call writer(tmp) on a temporary path beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are for everyone to read
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_with(path, lambda t: t.write_text(text))


def write_bytes(path: Path, data: bytes) -> Path:
    return write_with(path, lambda t: t.write_bytes(data))


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def replace_dir(path: Path, builder: Callable[[Path], object]) -> Path:
    """Build a whole folder under a temporary name, then swap it in for `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a build folder is for everyone to read
    try:
        builder(tmp)
        swap_in(tmp, path)
    except BaseException:
        _rmtree(tmp)
        raise
    return path


def swap_in(src: Path, path: Path) -> Path:
    """Rename the finished folder `src` to `path`, replacing what was there (two renames:
    a reader sees the old folder or the new one, never a mix)."""
    old = path.with_name(f".{path.name}.old")
    _rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(src, path)
    _rmtree(old)
    return path


# files that mark a folder as a qflow build (made by train, export or compile)
BUILD_MARKERS = ("config.yaml", "checkpoint.pt", "ir.json", "model.qonnx.onnx")


def check_build_folder(path: Path) -> None:
    """Refuse to replace a folder that is neither new, empty nor a qflow build: `--out .`
    must not wipe a user's files."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not any(
            (path / m).exists() for m in BUILD_MARKERS))):
        raise ValueError(f"{path}: exists and is not a qflow build (none of "
                              f"{', '.join(BUILD_MARKERS)}); choose a new or empty folder")


def _rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
