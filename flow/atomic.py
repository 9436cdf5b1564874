"""Write files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import ctypes
import errno
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
        _fsync(Path(tmp))  # the data on disk before the name: a crash leaves old or new
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
    """Put the finished folder `src` at `path`, replacing what was there: exchanged in one
    step where the OS allows (renameat2), else two renames (a reader sees the old folder or
    the new one, never a mix)."""
    if path.exists() and exchange(src, path):
        _rmtree(src)  # it now holds the old folder
        return path
    old = path.with_name(f".{path.name}.old")
    _rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(src, path)
    _rmtree(old)
    return path


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the C
    library or the file system has no such call."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)
