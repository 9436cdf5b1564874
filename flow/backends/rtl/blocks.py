"""Where a hand-written rtl/ block is: rtl/<group>/<block>.sv, grouped by what the blocks do
(compute/, activation/, pool/, stream/, memory/, uart/; rtl/README.md lists them), the
package pipeline_pkg.sv at rtl/ itself and the vendor primitives under rtl/vendor/. Block
names are unique across the groups: a generated rtl/ holds its copies side by side."""

from __future__ import annotations

from pathlib import Path

from flow.resources import source_dir

VENDOR = "vendor"  # rtl/vendor/<family>/: blocks of one FPGA family, outside the groups


def block_path(name: str) -> Path:
    """rtl/<name>.sv or rtl/<group>/<name>.sv (a block or a package); a RuntimeError when
    there is none or more than one."""
    root = source_dir("rtl")
    found = [p for p in [root / f"{name}.sv", *sorted(root.glob(f"*/{name}.sv"))]
             if p.is_file() and p.parent.name != VENDOR]
    if len(found) != 1:
        raise RuntimeError(f"rtl block {name!r}: {len(found)} files {[str(p) for p in found]}"
                           f" in {root} (want one, at rtl/ or in one of its groups)")
    return found[0]


def all_blocks() -> list[Path]:
    """Every block and package of rtl/ and its groups (not rtl/vendor/), by path."""
    root = source_dir("rtl")
    return sorted(p for p in [*root.glob("*.sv"), *root.glob("*/*.sv")]
                  if p.parent.name != VENDOR)


def vendor_blocks(family: str, names: tuple[str, ...]) -> list[Path]:
    """rtl/vendor/<family>/<name> for each of `names` (file names)."""
    return [source_dir("rtl") / VENDOR / family / name for name in names]
