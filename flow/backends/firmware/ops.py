"""The firmware's layer kinds: one module per kind (`dense`, `conv`, `pool`, `add`), found by the
layer's kind through flow.ir.op_for. Adding a kind means adding its module and one entry
here.

An op module provides
    plan_layer(index, layer, bits_out=False, in_pixel=0) -> LayerPlan
        the layer's kernel, stored constants and storage (FirmwareError when it cannot);
        `bits_out`: the next layer reads BIPOLAR activations as bits; `in_pixel`: the
        layer reads a bit frame of pixels of that many channels (each pixel starting a
        word), 0 for a flat vector or int8;
    reads_bits(layer, bits_out=False) -> bool
        whether the layer reads BIPOLAR inputs as bits (else as int8 -1/+1), given how its
        outputs are stored;
    NOTES: list[str]
        what size_report.json's notes say about its storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

from flow.backends.firmware import add, conv, dense, pool
from flow.ir import Layer, kind_registry, op_for

STAGE = "the firmware backend"
OPS: dict[str, ModuleType] = kind_registry((dense, conv, pool, add), STAGE)


class LayerPlan(Protocol):
    """What model-level code (arena, C emission, reports) reads of one layer's plan."""

    index: int
    layer: Layer
    why: str  # why this kernel, when there was a choice ("" otherwise)

    @property
    def kernel_name(self) -> str: ...  # the C function the layer calls
    @property
    def mac_kind(self) -> str: ...  # the group its instructions per MAC are reported in
    @property
    def outputs(self) -> int: ...  # output elements
    @property
    def output_bytes(self) -> int: ...  # arena bytes of its outputs as stored
    @property
    def scratch_bytes(self) -> int: ...  # arena scratch its kernel needs
    @property
    def macs(self) -> int: ...
    @property
    def weight_bytes(self) -> int: ...
    @property
    def threshold_bytes(self) -> int: ...
    @property
    def bias_bytes(self) -> int: ...

    def compact(self) -> LayerPlan | None:
        """The same layer with fewer bytes of flash (and a slower kernel), or None."""

    def constants_c(self, name: str) -> str:
        """C definitions of its constants (arrays named qflow_w<i>, qflow_t<i>,
        qflow_b<i>, qflow_m<i>, qflow_s<i>: see toolchain.constants_in_flash) and of its
        layer object `name`."""

    def declaration_c(self, name: str) -> str:
        """The extern declaration of its layer object `name`."""

    def call_c(self, name: str, xs: Sequence[str], y: str, scratch: str) -> str:
        """The C statement running it: reads the C expressions xs (one per input the layer
        reads, in the graph's order), writes y."""

    def size_row(self) -> dict[str, Any]:
        """Its entry in size_report.json's layers."""


def op(layer: Layer) -> ModuleType:
    """The op module of a layer's kind; IRError naming the layer for an unknown kind."""
    return op_for(OPS, layer, STAGE)
