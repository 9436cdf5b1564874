"""The QONNX frontend: Brevitas' export (or any QONNX graph), Quant / BipolarQuant / Trunc
nodes on float ops, which is already the normalized form lowering matches. Its reference
is qonnx's executor on the same file (flow.reference)."""

from __future__ import annotations

from pathlib import Path

import onnx

from flow.lower.graph import QUANT_OPS

NAME = "qonnx"
REFERENCES = ("qonnx_executor",)
SOURCE_FILE = "model.qonnx.onnx"  # where a compiled build keeps the file as given


def accepts(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QUANT_OPS for n in model.graph.node)


def normalize(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """Already QONNX: the model as it is (flow.frontends.load calls it once accepted)."""
    return model
