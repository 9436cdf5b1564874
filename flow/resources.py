"""Where the hand-written hardware and firmware sources are: `rtl/`, `hls/` and `firmware/`
of the checkout, or the copies that an installed qflow carries as package data."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

SOURCE_TREES = ("rtl", "hls", "firmware")
# a template's placeholder: @name@ (C, C++, Tcl, CMake and YAML use neither @ nor this form)
PLACEHOLDER = re.compile(r"@([a-z_]+)@")


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


def fill_template(tree: str, rel: str, **values: object) -> str:
    """<tree>/templates/<rel> with every @name@ replaced by values[name]; the names given
    must be exactly the template's (a missing or unused value is a generator bug)."""
    path = source_dir(tree) / "templates" / rel
    text = path.read_text()
    names = set(PLACEHOLDER.findall(text))
    if names != set(values):
        raise RuntimeError(f"{path}: placeholders {sorted(names)}, values for {sorted(values)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)
