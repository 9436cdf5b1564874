"""Where the hand-written hardware and firmware sources are: `rtl/`, `hls/` and `firmware/`
of the checkout, or the copies that an installed qflow carries as package data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SOURCE_TREES = ("rtl", "hls", "firmware")


def source_dir(tree: str) -> Path:
    """The folder of one source tree ("rtl", "hls" or "firmware")."""
    if tree not in SOURCE_TREES:
        raise ValueError(f"unknown source tree {tree!r}; one of {', '.join(SOURCE_TREES)}")
    checkout = Path(__file__).resolve().parents[1] / tree
    if checkout.is_dir():
        return checkout
    installed = Path(str(resources.files("flow") / "hw" / tree))
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"qflow's {tree}/ sources are missing: neither {checkout} nor "
                            f"{installed} exists (reinstall qflow)")
