"""Build configs (YAML): what to train, on what data, and how to fold it into hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SECTIONS = {"name", "seed", "data", "model", "train", "hardware", "firmware"}
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 20, "batch_size": 64, "lr": 0.01, "weight_decay": 0.0, "optimizer": "adam",
    "mode": "qat", "float_baseline": False, "calibration_batches": 20, "float_epochs": None,
}


class ConfigError(ValueError):
    """A config the flow cannot use; the message names the file and the key."""


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(sorted(SECTIONS))})")
    unknown = set(doc) - SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(sorted(SECTIONS))}")
    doc.setdefault("name", path.stem)
    doc.setdefault("seed", 0)
    doc.setdefault("data", {"name": "digits"})
    doc.setdefault("model", {})
    train = {**TRAIN_DEFAULTS, **(doc.get("train") or {})}
    unknown = set(train) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ConfigError(f"{path}: train: unknown key(s) {', '.join(sorted(unknown))}")
    if train["mode"] not in ("qat", "ptq"):
        raise ConfigError(f"{path}: train.mode must be 'qat' or 'ptq', not {train['mode']!r}")
    doc["train"] = train
    doc.setdefault("hardware", {})
    return doc
