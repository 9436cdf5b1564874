"""The references verify holds the golden model against, as adapters (`Reference`): each
says whether a build holds what it runs (`available`) and runs it on float inputs
(`trace`: float outputs [N, C] and integer codes). The build's frontend decides which
exist: a build trained here holds its checkpoint (Brevitas' forward, flow/train/reference.py)
and its QONNX export (qonnx's executor); a build compiled from a QONNX file, the executor
alone; one compiled from an ONNX QDQ file, onnxruntime on that file (outputs only: its fused
kernels hide the codes between layers) and the executor on its QONNX form. qonnx's executor
gives the codes of every activation quantizer in the graph's order (`qonnx_trace`);
Brevitas' forward those and the last layer's accumulators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

from flow.ir import Model

QONNX_FILE = "model.qonnx.onnx"  # a build's float graph, exported or compiled from
QDQ_FILE = "model.qdq.onnx"  # a build compiled from an ONNX QDQ file: that file
CHECKPOINT_FILE = "checkpoint.pt"  # a build trained here

Trace = tuple[np.ndarray, list[np.ndarray]]


@dataclass(frozen=True)
class Reference:
    """One reference: verify.json's agreement key, whether a build holds its source, and
    its run on a build's model and float inputs."""

    name: str
    available: Callable[[Path], bool]
    trace: Callable[[Path, Model, np.ndarray], Trace]


def _brevitas_trace(build_dir: Path, model: Model, x: np.ndarray) -> Trace:
    from flow.train.reference import brevitas_forward  # torch and Brevitas: only when used

    return brevitas_forward(build_dir, model, x)


REFERENCES = (
    Reference("qonnx_executor", lambda build: (build / QONNX_FILE).is_file(),
              lambda build, _model, x: qonnx_trace(build / QONNX_FILE, x)),
    Reference("brevitas_forward", lambda build: (build / CHECKPOINT_FILE).is_file(),
              _brevitas_trace),
    Reference("onnxruntime", lambda build: (build / QDQ_FILE).is_file(),
              lambda build, _model, x: (onnxruntime_outputs(build / QDQ_FILE, x), [])),
)


def references(build_dir: Path) -> dict[str, Reference]:
    """The references the build holds the sources of, by name."""
    return {r.name: r for r in REFERENCES if r.available(Path(build_dir))}


def qonnx_outputs(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor, one sample at a time (Brevitas exports a batch-1 graph)."""
    return qonnx_trace(onnx_path, x)[0]


def onnxruntime_outputs(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the CPU, with its default graph optimizations (the fused integer
    kernels a deployment runs), one sample at a time: outputs [N, C]."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    given = session.get_inputs()[0]
    shape = [1, *(d if isinstance(d, int) and d > 0 else 1 for d in given.shape[1:])]
    outs = [session.run(None, {given.name: x[i:i + 1].reshape(shape).astype(np.float32)})[0]
            for i in tqdm(range(len(x)), desc="onnxruntime", unit="sample", disable=None)]
    return np.stack([o.reshape(-1) for o in outs])


def activation_quantizers(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's activation quantizers (Quant/BipolarQuant of a non-constant tensor), in
    graph order: the input quantizer, then one per hidden layer."""
    consts = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    return [n for n in graph.node
            if n.op_type in ("Quant", "BipolarQuant") and n.input[0] not in consts]


def executable(onnx_path: Path) -> Any:
    """The file as qonnx's executor runs it (a qonnx ModelWrapper): a dynamic batch as
    batch 1, shapes inferred (which may reorder the nodes)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    mw = ModelWrapper(str(onnx_path))
    for v in (*mw.graph.input, *mw.graph.output):  # a dynamic batch runs as batch 1
        for d in v.type.tensor_type.shape.dim:
            if not d.dim_value:
                d.dim_value = 1
    return mw.transform(InferShapes())


def quantizer_tensors(onnx_path: Path) -> list[str]:
    """The output tensors of the graph's activation quantizers, in `qonnx_trace`'s order."""
    return [q.output[0] for q in activation_quantizers(executable(onnx_path).graph)]


def qonnx_trace(onnx_path: Path, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """qonnx's executor: outputs [N, C], and the integer codes [N, features] of every
    activation quantizer (`activation_quantizers`), flattened in the graph's order (see
    `frame_order` for the IR's)."""
    from qonnx.core.onnx_exec import execute_onnx

    mw = executable(onnx_path)
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
