"""`qflow verify DIR`: agreement between the golden model and every other execution.

References: qonnx's executor on model.qonnx.onnx (float graph, node by node), Brevitas'
forward on the checkpoint (when the build was trained here), and each requested backend
(integer accumulators compared with the golden model's, exactly). The bar is equality on
every sample; where one differs, verify.json lists the samples.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flow import backends, golden
from flow.atomic import write_json
from flow.inputs import test_split
from flow.ir import Model
from flow.ir import load as load_ir

log = logging.getLogger("qflow.verify")


def qonnx_outputs(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor on every sample: the graph's outputs [N, -1]."""
    return qonnx_tensors(onnx_path, x)[OUTPUT]


OUTPUT = ""  # qonnx_tensors' key of the graph's output


def qonnx_tensors(onnx_path: Path, x: np.ndarray, names: tuple[str, ...] = ()
                  ) -> dict[str, np.ndarray]:
    """qonnx's executor, one sample at a time (Brevitas exports a batch-1 graph): the
    graph's output (key OUTPUT) and the named intermediate tensors, each [N, ...]."""
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
    runs = [execute_onnx(mw, {iname: x[i:i + 1].reshape(ishape)},
                         return_full_exec_context=bool(names))
            for i in tqdm(range(len(x)), desc="qonnx executor", unit="sample", disable=None)]
    out = {OUTPUT: np.concatenate([r[oname] for r in runs]).reshape(len(x), -1)}
    out.update({n: np.concatenate([r[n] for r in runs]) for n in names})
    return out


def requantization_differences(model: Model, codes: np.ndarray, graph: dict[str, np.ndarray]
                               ) -> dict[str, dict[str, Any]]:
    """Per requantized layer: its codes against the float graph's quantizer output, in
    output steps (the largest difference, and the samples whose codes all agree)."""
    trace = dict(zip((layer.name for layer in model.layers), golden.trace_codes(model, codes),
                     strict=True))
    out = {}
    for name, where in model.meta.get("requantized_layers", {}).items():
        t = graph[where["tensor"]]
        ref = np.round(t.astype(np.float64) / where["scale"] + where["zero_point"])
        if ref.ndim == 4:  # (N, C, H, W) -> the IR's channel-last frame
            ref = ref.transpose(0, 2, 3, 1)
        diff = np.abs(trace[name] - ref.reshape(len(codes), -1))
        out[name] = {"max_step_difference": int(diff.max(initial=0)),
                     "equal_samples": int(np.all(diff == 0, axis=1).sum()),
                     "samples": len(codes)}
    return out


def brevitas_forward(build_dir: Path, model: Model, x: np.ndarray
                     ) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """Brevitas' forward on the checkpoint: float outputs, and its integers as the IR sees
    them: the codes of every activation quantizer (input first), then the last layer's
    accumulators recovered from its exact float output. Frames (N, C, H, W) are read in the
    IR's channel-last order."""
    if not (Path(build_dir) / "checkpoint.pt").is_file():
        return None
    import torch
    from brevitas.nn import QuantIdentity, QuantLinear

    from flow.train import load_trained

    net, _, _ = load_trained(build_dir)
    acts = [m for m in net.modules() if isinstance(m, QuantIdentity)]
    last = [m for m in net.modules() if isinstance(m, QuantLinear)][-1]
    seen: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, o))
             for m in (*acts, last)]
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy().reshape(len(x), -1)
    for h in hooks:
        h.remove()
    ints = []
    for m in acts:
        q = m.act_quant
        scale, zp = q.scale().detach().numpy(), q.zero_point().detach().numpy()
        codes = np.round(seen[m].numpy() / scale + zp)
        ints.append(codes.transpose(0, 2, 3, 1) if codes.ndim == 4 else codes)
    stage = model.output
    ints.append(np.round(seen[last].numpy().astype(np.float64) / stage.acc_scale) + stage.acc_offset)
    return out, [a.reshape(len(x), -1).astype(np.int64) for a in ints]


def compare(ref: np.ndarray, other: np.ndarray, equal: np.ndarray | None = None
            ) -> dict[str, Any]:
    """Exact agreement per sample (every output equal, or the given per-sample verdict)
    and of the argmax."""
    if equal is None:
        equal = np.all(ref == other, axis=1)
    return {"equal": int(equal.sum()), "total": len(ref),
            "argmax_equal": int((ref.argmax(1) == other.argmax(1)).sum()),
            "max_abs_diff": float(np.abs(ref.astype(np.float64) - other).max(initial=0.0)),
            "differing_samples": np.flatnonzero(~equal).tolist()[:100]}


def verify(build_dir: Path, limit: int | None = None, backend_names: list[str] | None = None,
           x: np.ndarray | None = None, y: np.ndarray | None = None) -> dict[str, Any]:
    build_dir = Path(build_dir)
    model: Model = load_ir(build_dir)
    if x is None:
        x, y = test_split(model)
    x, y = x[:limit], (y[:limit] if y is not None else None)
    codes = golden.quantize_input(model.input, x)
    acc = golden.run_codes(model, codes)
    out = golden.dequantize_output(model.output, acc).reshape(len(x), -1)
    result: dict[str, Any] = {"samples": len(x), "reference": "golden", "agreement": {}}
    if y is not None:
        result["accuracy"] = {"golden": float((out.argmax(1) == y).mean())}
    onnx_path = build_dir / "model.qonnx.onnx"
    if onnx_path.is_file():
        requantized = model.meta.get("requantized_layers", {})
        graph = qonnx_tensors(onnx_path, x, tuple(r["tensor"] for r in requantized.values()))
        result["agreement"]["qonnx_executor"] = compare(out, graph[OUTPUT])
        if requantized:
            # the integer requantization differs from the float graph by design (rounding):
            # measured per layer, and the outputs' argmax
            result["requantization"] = requantization_differences(model, codes, graph)
    bt = brevitas_forward(build_dir, model, x)
    if bt is not None:
        # agreement on integers: every weighted layer's codes (a pool's output is the next
        # layer's input, compared there) and the last accumulators; the logits' float ops
        # (batch norm) round differently in PyTorch, so floats are only reported
        trace = [codes, *(t for t, layer in zip(golden.trace_codes(model, codes), model.layers,
                                                strict=True) if layer.weighted)]
        same = np.ones(len(x), bool)
        for ours, theirs in zip(trace, bt[1], strict=True):
            same &= np.all(ours == theirs, axis=1)
        result["agreement"]["brevitas_forward"] = compare(out, bt[0], same)
        result["agreement"]["brevitas_forward"]["float_outputs_equal"] = int(
            np.all(out == bt[0], axis=1).sum())
        if y is not None:
            result["accuracy"]["brevitas_forward"] = float((bt[0].argmax(1) == y).mean())
    for name in backend_names or []:
        log.info("verify: running backend %s on %d samples", name, len(x))
        got = backends.run(name, model, build_dir, codes)
        result["agreement"][name] = compare(acc, np.asarray(got))
    result["all_equal"] = all(a["equal"] == a["total"] for a in result["agreement"].values())
    write_json(build_dir / "verify.json", result)
    for k, a in result["agreement"].items():
        log.info("verify: golden vs %s: %d / %d equal", k, a["equal"], a["total"])
    log.info("verify: wrote %s", build_dir / "verify.json")
    return result
