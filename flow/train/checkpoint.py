"""Checkpoints as data: written whole and read back, loaded as weights only (tensors,
numbers, strings and containers: never an object whose unpickling could run code), and
recording the training inputs they came from, so that --resume and sweep reuse one only for
the same training."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from flow.atomic import write_with


def training_inputs(cfg: dict[str, Any], epochs: bool = True) -> dict[str, Any]:
    """What training reads (seed, data, model, train), not how the result is lowered or
    built; without the epoch counts, what a resumed run must share with the one it continues."""
    t = {k: v for k, v in cfg["train"].items() if epochs or k not in ("epochs", "float_epochs")}
    return {"seed": cfg["seed"], "data": cfg["data"], "model": cfg["model"], "train": t}


RESUME_HINT = "delete it, or train without --resume, to start over"
EPOCH_KEYS = ("train.epochs", "train.float_epochs")  # what --resume may change


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` whole: to a temporary file, read back as every load reads it (weights
    only), then renamed over `path`. A full disk, or a state that is not plain tensors,
    numbers, strings and containers, fails here and leaves the previous checkpoint."""
    def write(tmp: Path) -> None:
        torch.save(state, tmp)
        try:
            torch.load(tmp, map_location="cpu", weights_only=True)
        except Exception as e:  # torch's zip and unpickling errors have many types
            raise RuntimeError(f"{path}: the checkpoint written does not read back "
                               f"({first_line(e)}); the previous one is left as it was "
                               "(is the disk full?)") from e
    write_with(path, write)


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first informative line of an error (not a heading such as "Error(s) in loading
    state_dict for QuantNet:"), shortened to `limit` characters."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    line = next((x for x in lines if not x.endswith(":")), lines[0] if lines else type(e).__name__)
    return line if len(line) <= limit else line[:limit - 3] + "..."


def load_checkpoint(path: Path, what_to_do: str) -> dict[str, Any]:
    """A qflow checkpoint, loaded as weights only: tensors, numbers, strings and containers,
    never an object whose unpickling could run code."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a checkpoint file; {what_to_do}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: refused: holds more than tensors, numbers, strings and "
                         "containers (loading it could run code; qflow loads weights only); "
                         f"{what_to_do}") from e
    except Exception as e:  # torch's zip and unpickling errors have many types
        raise ValueError(f"{path}: unreadable checkpoint, truncated or corrupt "
                         f"({first_line(e)}); {what_to_do}") from e
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"{path}: not a qflow checkpoint (no model state); {what_to_do}")
    return state


def first_difference(a: Any, b: Any, ignore: tuple[str, ...] = (), key: str = "") -> str | None:
    """The dotted key of the first value that differs between two configs (or parts of
    them), skipping the keys in `ignore`; None when they agree."""
    if key in ignore:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            found = first_difference(a.get(k), b.get(k), ignore, f"{key}.{k}" if key else str(k))
            if found is not None:
                return found
        return None
    return None if a == b else key or "(top level)"


def resume_state(checkpoint: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint to continue, checked: whole, and written for this config's training
    inputs but for its epoch counts (a checkpoint from before qflow recorded them passes)."""
    state = load_checkpoint(checkpoint, RESUME_HINT)
    missing = [k for k in ("optimizer", "scheduler", "rng", "history", "epoch") if k not in state]
    if missing or not isinstance(state.get("epoch"), int) or not isinstance(
            state.get("history"), list):
        raise ValueError(f"{checkpoint}: not a checkpoint to resume from (missing or malformed: "
                         f"{', '.join(missing) or 'epoch, history'}); {RESUME_HINT}")
    differs = first_difference(state.get("inputs", training_inputs(cfg)), training_inputs(cfg),
                               ignore=EPOCH_KEYS)
    if differs is not None:
        raise ValueError(f"{checkpoint}: was trained with a different {differs} than this "
                         f"config; {RESUME_HINT}")
    return state
