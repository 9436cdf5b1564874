"""A build's check results (verify.json, sim.json, hls.json, firmware.json, check.json,
synth.json): each records the fingerprint of the IR it was made from, and a run on part of
the test split (`--limit`, `--inputs`) goes to `<check>.subset.json`, apart from the whole
split's. The report reads a result only when its IR is the build's, so an old model's
figures never stand beside a new model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flow.atomic import write_json
from flow.fingerprint import model_fingerprint

if TYPE_CHECKING:
    from flow.ir import Model

FINGERPRINT = "ir_fingerprint"


def read_json(path: Path, want_object: bool = False) -> tuple[Any, str | None]:
    """One of the build's JSON files (a result, train.json, sweep.json, ...) read without
    failing on a missing or broken one: (document, None), or (None, why it is unusable)."""
    if not path.is_file():
        return None, "missing"
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return None, f"unreadable ({e})"
    if want_object and not isinstance(doc, dict):
        return None, "not a JSON object"
    return doc, None


def result_path(build_dir: Path, check: str, whole_split: bool = True) -> Path:
    return Path(build_dir) / (f"{check}.json" if whole_split else f"{check}.subset.json")


def write_result(build_dir: Path, check: str, model: Model, doc: dict[str, Any],
                 whole_split: bool = True) -> Path:
    """Write a check's result, stamped (in `doc` too) with the IR it checked."""
    doc[FINGERPRINT] = model_fingerprint(model)
    return write_json(result_path(build_dir, check, whole_split), doc)


def current_fingerprint(build_dir: Path) -> str | None:
    """The fingerprint of the build's IR (None without a readable IR)."""
    from flow.ir import IRError, load

    try:
        return model_fingerprint(load(Path(build_dir)))
    except IRError:
        return None


def read_result(build_dir: Path, name: str, fingerprint: str | None
                ) -> tuple[dict[str, Any] | None, str]:
    """A result file of the build's current IR: (document, "") or (None, why not), where
    why names a missing, unreadable or stale file."""
    doc, why = read_json(Path(build_dir) / name, want_object=True)
    if doc is None:
        return None, why or "unusable"
    if fingerprint is None:
        return None, "the build has no readable IR to check it against (run `qflow export`)"
    if doc.get(FINGERPRINT) != fingerprint:
        return None, f"{name} was made from another IR (stale: re-run its command)"
    return doc, ""
