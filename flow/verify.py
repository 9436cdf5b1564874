"""`qflow verify DIR`: agreement between the golden model and every other execution.

References: qonnx's executor on model.qonnx.onnx (float graph, node by node), Brevitas'
forward on the checkpoint (when the build was trained here), and each requested backend
(integer accumulators compared with the golden model's, exactly). The bar is equality on
every sample; where one differs, verify.json lists the samples.

Where the IR lists inexact layers (float32 products that round: scales not powers of two),
the executor may break a tie differently from exact integer arithmetic. `rounding` checks
each stage on the executor's own inputs to it and accepts a difference only within the
rounding tolerance of `rounding_slack`; verify.json's `qonnx_executor.rounding` counts the
samples affected, by the layer where the executor first departs from golden.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from tqdm import tqdm

from flow import backends, golden
from flow.atomic import write_json
from flow.golden.requant import prepare_activation
from flow.inputs import test_split
from flow.ir import Layer, Model
from flow.ir import load as load_ir

log = logging.getLogger("qflow.verify")


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


def frame_order(codes: np.ndarray, hwc: tuple[int, ...] | None) -> np.ndarray:
    """Codes [N, features] in the graph's (C, H, W) order -> the IR's (H, W, C) order, for
    a frame of shape `hwc` (None: a flat vector, unchanged)."""
    if hwc is None:
        return codes
    h, w, c = hwc
    return codes.reshape(len(codes), c, h, w).transpose(0, 2, 3, 1).reshape(len(codes), -1)


def requantization_differences(model: Model, codes: np.ndarray, onnx_path: Path,
                               graph_codes: list[np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per requantized layer: its codes against the float graph's quantizer output
    (`qonnx_trace`'s codes), in output steps: the largest difference, and the samples whose
    codes all agree."""
    trace = dict(zip((layer.name for layer in model.layers), golden.trace_codes(model, codes),
                     strict=True))
    by_tensor = {q.output[0]: c for q, c in zip(
        activation_quantizers(onnx.load(onnx_path).graph), graph_codes, strict=True)}
    out = {}
    shapes = {layer.name: getattr(layer, "out_shape", None) for layer in model.layers}
    for name, where in model.meta.get("requantized_layers", {}).items():
        diff = np.abs(trace[name] - frame_order(by_tensor[where["tensor"]], shapes[name]))
        out[name] = {"max_step_difference": int(diff.max(initial=0)),
                     "equal_samples": int(np.all(diff == 0, axis=1).sum()),
                     "samples": len(codes)}
    return out


def rounding_slack(layer: Layer, exact: bool) -> np.ndarray:
    """Per output channel, how far (in accumulator units) the float graph's evaluation of an
    inexact layer may move from the exact accumulator: float32 rounds each of the fan-in
    products, their sum and the two dequantizations, (fan_in + 3) * 2^-24 of the sum of
    |terms| (|x - zero point| <= the input range), plus one for the float32 rounding of the
    exact value itself. 0 for a layer whose float graph is exact, or that has no product."""
    weights = getattr(layer, "weights", None)  # [out_channels, ...]; pooling has none
    if exact or weights is None:
        return np.zeros(layer.out_channels, np.int64)
    w = np.abs(weights.astype(np.int64)).reshape(layer.out_channels, -1)
    lo, hi = layer.input_dtype.min, layer.input_dtype.max
    terms = w.sum(axis=1) * (hi - lo)
    return np.ceil((w.shape[1] + 3) * 2.0**-24 * terms).astype(np.int64) + 1


def rounding(model: Model, x: np.ndarray, ours: np.ndarray, out: np.ndarray,
             codes: list[np.ndarray]) -> dict[str, Any]:
    """Golden (outputs `ours` [N, C]) against the executor's trace (`qonnx_trace`: outputs
    `out` and activation codes `codes` on float inputs `x`), stage by stage on the
    executor's own inputs to each stage: the input codes must be equal; each layer's
    result, at its accumulator acc, must lie between golden's results at acc - slack and
    acc + slack (`rounding_slack`: equality for an exact layer), which is where float32
    rounding of the product can move it. Counts the samples whose outputs differ, by the
    first stage where the executor departs from golden, and lists the samples no rounding
    explains. A requantized layer differs from the float graph by design: it counts where
    it departs, and `requantization_differences` measures it. ValueError when the
    executor's activation quantizers do not match the layers."""
    inexact = list(model.meta.get("inexact_layers", []))
    requantized = model.meta.get("requantized_layers", {})
    n = len(x)
    if len(codes) != len(model.layers):
        raise ValueError(f"{model.name}: the executor shows {len(codes)} activation quantizers "
                         f"for {len(model.layers)} layers; cannot follow it layer by layer")
    stages = ["input", *(lay.name for lay in model.layers)]
    inp = model.input
    codes = [frame_order(codes[0], inp.shape[1:] + inp.shape[:1] if inp.channels_last else None),
             *(frame_order(c, getattr(lay, "out_shape", None))
               for c, lay in zip(codes[1:], model.layers, strict=False))]
    departs = np.full(n, -1)  # first stage whose result differs, per sample
    explained = np.all(golden.quantize_input(model.input, x) == codes[0], axis=1)
    departs[~explained] = 0
    for i, lay in enumerate(model.layers):
        last = i == len(model.layers) - 1
        acc = golden.layer(dataclasses.replace(cast(Any, lay), activation=None), codes[i])
        slack = rounding_slack(lay, lay.name not in inexact)

        def result(a: np.ndarray, lay: Layer = lay, last: bool = last) -> np.ndarray:
            if last:
                return golden.dequantize_output(model.output, a).reshape(n, -1).astype(np.float64)
            return prepare_activation(lay.activation, np.int64)(a).astype(np.float64)

        theirs = out.astype(np.float64) if last else codes[i + 1]
        at_lo, at_hi = result(acc - slack), result(acc + slack)
        low, high = np.minimum(at_lo, at_hi), np.maximum(at_lo, at_hi)
        if lay.name not in requantized:
            explained &= np.all((low <= theirs) & (theirs <= high), axis=1)
        differs = np.any(result(acc) != theirs, axis=1)
        departs[(departs < 0) & differs] = i + 1
    affected = np.any(ours != out, axis=1)
    by_stage = {stages[k]: int((affected & (departs == k)).sum()) for k in range(len(stages))
                if (affected & (departs == k)).any()}
    return {"inexact_layers": inexact, "affected_samples": int(affected.sum()),
            "first_difference": by_stage,
            "unexplained_samples": np.flatnonzero(~explained).tolist()[:100]}


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
        theirs, graph_codes = qonnx_trace(onnx_path, x)
        result["agreement"]["qonnx_executor"] = compare(out, theirs)
        try:
            report = rounding(model, x, out, theirs, graph_codes)
        except ValueError as e:  # a graph not traceable layer by layer: counts only
            log.warning("verify: %s", e)
            report = {"inexact_layers": model.meta.get("inexact_layers", []), "error": str(e)}
        result["agreement"]["qonnx_executor"]["rounding"] = report
        if model.meta.get("requantized_layers"):
            # the integer requantization differs from the float graph by design (rounding):
            # measured per layer in output steps
            result["requantization"] = requantization_differences(model, codes, onnx_path,
                                                                  graph_codes)
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
