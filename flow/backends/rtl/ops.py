"""The layer kinds the RTL backend builds, each in its own module (see stage.OpModule), and
the rtl/ sources a generated top is built from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from flow.backends.rtl import add, conv, dense, pool
from flow.backends.rtl.blocks import block_path
from flow.ir import Layer, kind_registry, op_for

# kind -> module with the functions of stage.OpModule
OPS: dict[str, ModuleType] = kind_registry((dense, conv, pool, add), "the rtl backend")

# The package first (Verilator reads it before its users), the primitives the ops share and
# the stream plumbing between stages; each op adds its own blocks after these.
COMMON_BLOCKS = ("pipeline_pkg", "adder_tree", "rom", "axis_fifo", "axis_dwc")


def op(layer: Layer) -> ModuleType:
    """The module of the layer's kind; an IRError naming the layer for a kind not built."""
    return op_for(OPS, layer, "the rtl backend")


def block_sources(layers: Iterable[Layer] | None = None) -> list[Path]:
    """The rtl/ blocks, dependencies first, that a top of `layers` instantiates (every
    block when None: the sources of block builds and of the fingerprint)."""
    ops = OPS.values() if layers is None else [op(layer) for layer in layers]
    names = dict.fromkeys([*COMMON_BLOCKS, *(b for o in ops for b in o.BLOCKS)])
    return [block_path(name) for name in names]
