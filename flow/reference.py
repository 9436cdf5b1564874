"""The float graph's reference: qonnx's executor on the exported (or compiled) QONNX file,
its outputs and the integer codes of every activation quantizer, that verify holds the
golden model against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm


def qonnx_outputs(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor, one sample at a time (Brevitas exports a batch-1 graph)."""
    return qonnx_trace(onnx_path, x)[0]


def activation_quantizers(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's activation quantizers (Quant/BipolarQuant of a non-constant tensor), in
    graph order: the input quantizer, then one per hidden layer."""
    consts = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n for n in graph.node
            if n.op_type in ("Quant", "BipolarQuant") and n.input[0] not in consts]


def qonnx_trace(onnx_path: Path, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """qonnx's executor: outputs [N, C], and the integer codes [N, features] of every
    activation quantizer (`activation_quantizers`), flattened in the graph's order (see
    `frame_order` for the IR's)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    mw = ModelWrapper(str(onnx_path))
    for v in (*mw.graph.input, *mw.graph.output):  # a dynamic batch runs as batch 1
        for d in v.type.tensor_type.shape.dim:
            if not d.dim_value:
                d.dim_value = 1
    mw = mw.transform(InferShapes())
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    ishape = [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]
    quants = activation_quantizers(mw.graph)
    outs: list[np.ndarray] = []
    codes: list[list[np.ndarray]] = [[] for _ in quants]
    for i in tqdm(range(len(x)), desc="qonnx executor", unit="sample", disable=None):
        ctx = execute_onnx(mw, {iname: x[i:i + 1].reshape(ishape)}, return_full_exec_context=True)
        outs.append(ctx[oname].reshape(-1))
        for k, q in enumerate(quants):
            zp = ctx[q.input[2]] if q.op_type == "Quant" else 0.0
            c = np.round(ctx[q.output[0]].astype(np.float64) / ctx[q.input[1]] + zp)
            codes[k].append(c.reshape(-1))
    return np.stack(outs), [np.stack(c).astype(np.int64) for c in codes]
