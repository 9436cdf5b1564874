"""Fingerprints: which IR (and which hand-written sources) a generated artifact came from.

Every generator stamps its output folder with `fingerprint.json`; every consumer compares
the stamp with the IR it is asked to run and regenerates (or refuses) on a mismatch, so a
stale artifact never answers for a new model. The sources are the hand-written blocks,
templates or kernels and the generator's own Python (`python_sources`): a folder generated
by older generator code is stale too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flow.atomic import write_json

if TYPE_CHECKING:
    from flow.ir import Model

STAMP = "fingerprint.json"


def model_fingerprint(model: Model) -> str:
    """sha256 of the whole IR: ir.json's document and every array (dtype, shape, bytes)."""
    doc, arrays = model.serialize()
    h = hashlib.sha256(json.dumps(doc, sort_keys=True).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"\0{key}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of one file's content (what a cache records of what it built)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files_fingerprint(paths: Iterable[Path]) -> str:
    """sha256 of files' names and contents (the blocks, templates or kernels a build uses)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def python_sources(*modules: str) -> list[Path]:
    """The Python files of modules or packages (a package: every .py file in its folder),
    found where they are imported from, e.g. python_sources("flow.backends.rtl")."""
    out: list[Path] = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"python_sources: no module {name}")
        origin = Path(spec.origin)
        out += sorted(origin.parent.glob("*.py")) if spec.submodule_search_locations else [origin]
    return out


def stamp(model: Model, sources: Iterable[Path] = ()) -> dict[str, str]:
    """The IR's and the sources' hashes (generated folders name their files relative to
    themselves, so where a folder lies is no part of it)."""
    return {"ir": model_fingerprint(model), "sources": files_fingerprint(sources)}


def write_stamp(folder: Path, model: Model, sources: Iterable[Path] = ()) -> Path:
    """Write folder/fingerprint.json (call it inside the temporary folder a generator
    renames into place, so that a folder with a stamp is always complete)."""
    return write_json(Path(folder) / STAMP, stamp(model, sources))


def read_stamp(folder: Path) -> dict[str, str] | None:
    path = Path(folder) / STAMP
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_current(folder: Path, model: Model, sources: Iterable[Path] = ()) -> bool:
    """True when folder was generated from exactly this IR and these sources."""
    return read_stamp(folder) == stamp(model, sources)
