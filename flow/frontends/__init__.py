"""Frontends: one module per source format, each turning a file that format writes into
normalized QONNX (quantizers as Quant / BipolarQuant / Trunc nodes on float ops), the one
form lowering's patterns match, and naming the references verify runs for it
(flow.reference). A frontend module has NAME, REFERENCES, accepts(model) and
normalize(model, path); adding a source format (e.g. onnxruntime's QDQ models) is adding a
module to FRONTENDS. Every file is read as untrusted input first (`onnxfile`).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import onnx

from flow.frontends import qdq, qonnx
from flow.frontends.onnxfile import read_onnx
from flow.lower.graph import LoweringError

FRONTENDS: tuple[ModuleType, ...] = (qonnx, qdq)


def load(path: Path) -> tuple[onnx.ModelProto, ModuleType]:
    """The file at `path` as normalized QONNX, and the frontend that read it; a
    LoweringError naming the file where no frontend reads it."""
    model = read_onnx(Path(path))
    for frontend in FRONTENDS:
        if frontend.accepts(model):
            return frontend.normalize(model, Path(path)), frontend
    raise LoweringError(f"{path}: no Quant/BipolarQuant or QuantizeLinear/DequantizeLinear "
                        "node: not a quantized model (QONNX or ONNX QDQ)")
