"""The per-kind modules of the HLS backend, looked up by layer kind (`flow.ir.op_for`).

Each module holds everything one kind of layer needs (its parameter headers, its call in
the top, its width limits) behind `stage(layer, index) -> LayerStage`. Adding a kind means
adding its module (with its KINDS) to OPS; the top, the testbench and the C simulation do
not change.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

from flow.backends.hls import add, conv, dense, pool
from flow.backends.hls.cpp import ApWord
from flow.ir import Layer, Model, kind_registry, op_for

OPS: dict[str, ModuleType] = kind_registry((dense, conv, pool, add), "the HLS backend")


class LayerStage(Protocol):
    """One dataflow process of the top: its stream ports, its files, its function."""

    @property
    def name(self) -> str: ...  # the C++ function (and file prefix) of the layer

    @property
    def label(self) -> str: ...  # "layer <index> (<IR name>, from <source>)", for messages

    # the input side, of every input (an add's two differ only in type; the top takes
    # each input's type from what feeds it)
    @property
    def in_type(self) -> str: ...  # qflow type of the (first) input's elements

    @property
    def in_elems(self) -> int: ...  # input elements per stream word

    @property
    def in_features(self) -> int: ...  # input elements per vector

    @property
    def out_type(self) -> str: ...  # the same three for the output side

    @property
    def out_elems(self) -> int: ...

    @property
    def out_features(self) -> int: ...

    def files(self) -> dict[str, str]:
        """The generated files the function includes, by name."""
        ...

    def function(self) -> str:
        """`static void <name>(hls::stream<in word>& in, hls::stream<out word>& out)`: one
        input stream per IR input, in `Model.inputs_of` order."""
        ...

    def words(self) -> list[ApWord]:
        """Every ap_uint word it declares, to check against Vitis' widest."""
        ...

    def report(self) -> dict[str, Any]:
        """Its row in hls.json's "layers"."""
        ...


def stage(layer: Layer, index: int) -> LayerStage:
    """The HLS stage of layer `index`; an IRError naming the layer for a kind not handled."""
    return op_for(OPS, layer, "the HLS backend").stage(layer, index)


def stages(model: Model) -> list[LayerStage]:
    return [stage(layer, i) for i, layer in enumerate(model.layers)]
