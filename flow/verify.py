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

A requantized layer (flow/ir/requant.py) proven equal to the float graph's quantizer at
lowering (`proven_exact`) is judged as thresholds are. Any other differs from the float
graph by design (the IR lists it inexact). verify.json's
`requantization` measures each one on the executor's own inputs to it: the largest
difference in output steps (within `requant_step_bound`, 1 for factors below 3/2), the share
of samples whose codes all agree, and with power-of-two scales the outputs that differ at
a tie (qonnx rounds half to even, TFLite's shift away from zero) or by the double rounding
(its high product rounds before the shift); plus the argmax agreement. `passed` (what
`qflow check` takes) accepts those differences and float32 rounding where the IR lists a
layer inexact (as `rounding` judges it), nothing else: every other difference fails, and a
power-of-two layer must reproduce the float graph's exact value.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from flow import backends, golden
from flow.buildfolder import writing
from flow.golden.exact import float_product_slack
from flow.golden.requant import prepare_activation
from flow.inputs import check_batch, first_samples, test_split
from flow.ir import MODEL_INPUT, AddLayer, Layer, Model, Requant
from flow.ir import load as load_ir
from flow.reference import QONNX_FILE, quantizer_tensors, references
from flow.results import write_result

log = logging.getLogger("qflow.verify")


def frame_order(codes: np.ndarray, hwc: tuple[int, ...] | None) -> np.ndarray:
    """Codes [N, features] in the graph's (C, H, W) order -> the IR's (H, W, C) order, for
    a frame of shape `hwc` (None: a flat vector, unchanged)."""
    if hwc is None:
        return codes
    h, w, c = hwc
    return codes.reshape(len(codes), c, h, w).transpose(0, 2, 3, 1).reshape(len(codes), -1)


def rounding_slack(layer: Layer, exact: bool) -> np.ndarray:
    """Per output channel, how far (in accumulator units) the float graph's evaluation of an
    inexact layer may move from the exact accumulator (`float_product_slack`; |x - zero
    point| <= the input range). 0 for a layer whose float graph is exact, or that has no
    product."""
    if isinstance(layer, AddLayer) and not exact:  # two inputs, scales aligned to a unit
        lo = min(t.min for t in layer.input_dtypes)
        hi = max(t.max for t in layer.input_dtypes)
        pair = np.tile(np.array(layer.input_weights), (layer.out_channels, 1))
        return float_product_slack(pair, lo, hi) + layer.alignment_slack
    weights = getattr(layer, "weights", None)  # [out_channels, ...]; pooling has none
    if exact or weights is None:
        return np.zeros(layer.out_channels, np.int64)
    return float_product_slack(weights, layer.input_dtype.min, layer.input_dtype.max)


def requant_step_bound(act: Requant) -> np.ndarray:
    """Per channel, the most output steps a requantization can differ from the float graph
    it replaces. half_even: one (its factor and bias carry the product's 31 bits and more;
    a value near a step's edge may round the other way). tflite: the bias rounded to whole
    accumulator units moves the exact value by up to half the real factor, the high
    product's rounding (before a right shift) by up to a quarter step; rounding to the
    nearest step then adds less than one."""
    if act.rounding == "half_even":
        return np.ones(len(act.multiplier), np.int64)
    factor = act.multiplier * 2.0 ** (act.shift - 31)
    return 1 + np.floor(factor / 2 + 0.25).astype(np.int64)


def exact_requantization(act: Requant, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A power-of-two TFLite requantization as the float graph computes it, independently
    of TFLite's integer function: (acc + bias) * 2^(shift - 1) rounded half to even
    (qonnx's Quant), plus the zero point, clamped; and where that value is a tie (x.5).
    (A power-of-two half_even requantization is that function itself.)"""
    x = np.asarray(acc, np.int64) + act.bias
    e = np.broadcast_to(np.maximum(1 - act.shift, 0), x.shape)  # right shift of (acc + bias)
    scaled = x << np.maximum(act.shift - 1, 0)
    q = scaled >> e
    rest = scaled - (q << e)
    half = np.where(e > 0, np.int64(1) << np.maximum(e - 1, 0), 1)  # e = 0: never a tie
    tie = (e > 0) & (rest == half)
    y = q + ((rest > half) | (tie & (q % 2 == 1)))
    return np.clip(y + act.zero_point, act.clamp_min, act.clamp_max), tie


def judge_codes(layer: Layer, acc: np.ndarray, slack: np.ndarray, theirs: np.ndarray,
                requantized: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """A hidden layer's codes on a reference's own inputs to it (accumulators acc [N, ...,
    C] in the IR's order): golden's codes, which of the reference's codes `theirs` are
    explained, and for a requantized layer (`requantized`: its entry in the IR's
    meta.requantized_layers) its measured difference. Thresholds, and a requantization
    proven equal to the float graph's quantizer (`proven_exact`): golden's codes at
    acc -+ slack bound them. A requantization with float scales: those widened by
    `requant_step_bound`. A power-of-two requantization: the float graph's exact value
    (`exact_requantization`), where golden may differ only by the integer rounding."""
    n, act = len(acc), layer.activation
    channels = layer.out_channels
    apply = prepare_activation(act, np.int64)
    acc = acc.reshape(n, -1, channels)  # [N, positions, C]: per-channel parameters broadcast

    def at(a: np.ndarray) -> np.ndarray:
        return apply(a).reshape(n, -1)

    mine = at(acc)
    lo, hi = at(acc - slack), at(acc + slack)
    low, high = np.minimum(lo, hi), np.maximum(lo, hi)
    if not isinstance(act, Requant):
        return mine, (low <= theirs) & (theirs <= high), None
    power_of_two = bool(requantized.get("power_of_two", False))
    diff = np.abs(mine - theirs)
    bound = requant_step_bound(act)
    measured: dict[str, Any] = {
        "power_of_two": power_of_two, "max_step_difference": int(diff.max(initial=0)),
        "step_bound": int(bound.max(initial=1)),
        "equal_samples": int(np.all(diff == 0, axis=1).sum()), "samples": n,
        "equal_share": float(np.all(diff == 0, axis=1).mean()) if n else 1.0,
        "differing_outputs": int((diff > 0).sum()), "outputs": int(diff.size)}
    if requantized.get("proven_exact", False):
        return mine, (low <= theirs) & (theirs <= high), measured
    if power_of_two and act.rounding == "half_even":
        return mine, theirs == mine, measured
    if power_of_two:
        exact, tie = exact_requantization(act, acc)
        ok = theirs == exact.reshape(n, -1)
        tie = tie.reshape(n, -1)
        measured.update(tie_outputs=int(((diff > 0) & tie).sum()),
                        double_rounding_outputs=int(((diff > 0) & ~tie).sum()))
        return mine, ok, measured
    wide = np.broadcast_to(bound, (n, diff.shape[1] // channels, channels)).reshape(n, -1)
    return mine, (low - wide <= theirs) & (theirs <= high + wide), measured


def measured_layers(model: Model) -> list[Layer]:
    """The layers a reference's codes are compared at: those that end in an activation
    quantizer, and the last (its outputs)."""
    return [lay for lay in model.layers
            if lay.weighted or lay.activation is not None or lay is model.layers[-1]]


def hidden_stages(model: Model, codes: np.ndarray, after: dict[str, np.ndarray]
                  ) -> Iterator[tuple[Layer, np.ndarray, np.ndarray | None]]:
    """A reference's run walked layer by layer on its own codes: the input codes, then
    `after` (its codes after each measured layer, by name, in the IR's order). Yields each
    measured layer, its accumulators on the reference's inputs to it, and the reference's
    codes after it (None for the last layer). Pools run on the reference's codes (exact)."""
    values: dict[str, np.ndarray] = {MODEL_INPUT: codes}
    measured = {lay.name for lay in measured_layers(model)}
    for i, lay in enumerate(model.layers):
        xs = [values[name] for name in model.inputs_of(i)]
        if lay.name not in measured:
            values[lay.name] = golden.layer(lay, *xs)
            continue
        acc = golden.layer(dataclasses.replace(cast(Any, lay), activation=None), *xs)
        theirs = after.get(lay.name)
        yield lay, acc, theirs
        if theirs is not None:
            values[lay.name] = theirs


def reference_codes(model: Model, codes: list[np.ndarray], tensors: list[str] | None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The executor's activation codes (`qonnx_trace`, quantizers in graph order, their
    output `tensors`) as the input codes and each measured layer's codes by name, in the
    IR's order. A chain's quantizers follow its layers; a graph's are found by the tensor
    lowering recorded for each layer (meta.activation_tensors). ValueError where they
    cannot be matched."""
    inp = model.input
    given = frame_order(codes[0], inp.shape[1:] + inp.shape[:1] if inp.channels_last else None)
    layers = [lay for lay in measured_layers(model) if lay.activation is not None]
    if model.is_chain:
        if len(codes) != len(layers) + 1:
            raise ValueError(f"{model.name}: the executor shows {len(codes)} activation "
                             f"quantizers for {len(layers)} activations; cannot follow it "
                             "layer by layer")
        found = dict(zip((lay.name for lay in layers), codes[1:], strict=True))
    else:
        at = model.meta.get("activation_tensors", {})
        by_tensor = dict(zip(tensors or [], codes, strict=tensors is not None))
        missing = [lay.name for lay in layers if at.get(lay.name) not in by_tensor]
        if missing:
            raise ValueError(f"{model.name}: the executor's quantizers do not show the codes "
                             f"of {', '.join(missing)}; cannot follow it layer by layer")
        found = {lay.name: by_tensor[at[lay.name]] for lay in layers}
    return given, {lay.name: frame_order(found[lay.name], getattr(lay, "out_shape", None))
                   for lay in layers}


def rounding(model: Model, x: np.ndarray, ours: np.ndarray, out: np.ndarray,
             codes: list[np.ndarray], tensors: list[str] | None = None) -> dict[str, Any]:
    """Golden (outputs `ours` [N, C]) against the executor's trace (`qonnx_trace`: outputs
    `out` and activation codes `codes` on float inputs `x`), stage by stage on the
    executor's own inputs to each stage: the input codes must be equal; each hidden layer's
    codes are judged by `judge_codes` (float32 rounding for thresholds, the requantization's
    bound or, with power-of-two scales, the float graph's exact value); the last layer's
    outputs must lie between golden's at acc - slack and acc + slack (`rounding_slack`).
    Counts the samples whose outputs differ, by the first stage where the executor departs
    from golden, lists the samples nothing explains, and measures each requantized layer
    (`requantized`). ValueError when the executor's activation quantizers do not match the
    layers."""
    inexact = list(model.meta.get("inexact_layers", []))
    requantized = model.meta.get("requantized_layers", {})
    n = len(x)
    inp = model.input
    given, after = reference_codes(model, codes, tensors)
    stages = ["input", *(lay.name for lay in measured_layers(model))]
    departs = np.full(n, -1)  # first stage whose result differs, per sample
    explained = np.all(golden.quantize_input(inp, x) == given, axis=1)
    departs[~explained] = 0
    measured = {}
    for k, (lay, acc, theirs) in enumerate(hidden_stages(model, given, after), start=1):
        meta = requantized.get(lay.name, {})
        # a requantized layer is listed inexact where it differs from the float graph's
        # quantizer; float32 slack is for its product alone
        slack = rounding_slack(lay, meta.get("float_product_exact", lay.name not in inexact))
        if theirs is None:  # the last layer: the graph's float outputs
            def result(a: np.ndarray) -> np.ndarray:
                return golden.dequantize_output(model.output, a).reshape(n, -1).astype(np.float64)

            mine, theirs = result(acc), out.astype(np.float64)
            at_lo, at_hi = result(acc - slack), result(acc + slack)
            ok = (np.minimum(at_lo, at_hi) <= theirs) & (theirs <= np.maximum(at_lo, at_hi))
        else:
            mine, ok, m = judge_codes(lay, acc, slack, theirs, meta)
            if m is not None:
                measured[lay.name] = m
        explained &= np.all(ok, axis=1)
        departs[(departs < 0) & np.any(mine != theirs, axis=1)] = k
    affected = np.any(ours != out, axis=1)
    by_stage = {stages[k]: int((affected & (departs == k)).sum()) for k in range(len(stages))
                if (affected & (departs == k)).any()}
    return {"inexact_layers": inexact, "affected_samples": int(affected.sum()),
            "first_difference": by_stage,
            "unexplained_samples": np.flatnonzero(~explained).tolist()[:100],
            "requantized": measured}


def explained(agreement: dict[str, Any], requantized: dict[str, Any]) -> bool:
    """Golden against the executor passes when every sample is equal, or when `rounding`
    explains every sample that differs: a requantized layer's measured difference (within
    its bound; exact but for the integer rounding with power-of-two scales), or float32
    rounding where the IR lists the layer inexact (the float graph's logits, and its ties).
    Where no layer is inexact, every difference must start at a requantized layer. A layer
    that `rounding` cannot explain fails even where the outputs end up equal."""
    r = agreement["rounding"]
    if r.get("unexplained_samples"):
        return False
    if agreement["equal"] == agreement["total"]:
        return True
    if "error" in r:
        return False
    starts = set(r["first_difference"])
    unproven = {k for k, v in requantized.items() if not v.get("proven_exact", False)}
    return (sum(r["first_difference"].values()) == r["affected_samples"]
            and (bool(r["inexact_layers"]) or starts <= unproven))


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
    """Golden against every reference and `backend_names` on the build's test split (or x),
    the first `limit` samples; writes verify.json (verify.subset.json for part of the split
    or other inputs)."""
    with writing(build_dir) as folder:
        return _verify(folder, limit, backend_names or [], x, y)


def _verify(build_dir: Path, limit: int | None, backend_names: list[str], x: np.ndarray | None,
            y: np.ndarray | None) -> dict[str, Any]:
    model: Model = load_ir(build_dir)
    whole_split = x is None and limit is None
    if x is None:
        x, y = test_split(model)
    x = first_samples(check_batch(model, np.asarray(x), "verify inputs"), limit)
    y = first_samples(y, limit) if y is not None else None
    codes = golden.quantize_input(model.input, x)
    acc = golden.run_codes(model, codes)
    out = golden.dequantize_output(model.output, acc).reshape(len(x), -1)
    result: dict[str, Any] = {"samples": len(x), "reference": "golden", "agreement": {}}
    requantized = model.meta.get("requantized_layers", {})
    if y is not None:
        result["accuracy"] = {"golden": float((out.argmax(1) == y).mean())}
    refs = references(build_dir)
    if "qonnx_executor" in refs:
        theirs, graph_codes = refs["qonnx_executor"].trace(build_dir, model, x)
        result["agreement"]["qonnx_executor"] = compare(out, theirs)
        try:
            report = rounding(model, x, out, theirs, graph_codes,
                              quantizer_tensors(build_dir / QONNX_FILE))
        except ValueError as e:  # a graph not traceable layer by layer: counts only
            log.warning("verify: %s", e)
            report = {"inexact_layers": model.meta.get("inexact_layers", []), "error": str(e)}
        if requantized:
            # the integer requantization differs from the float graph by design (rounding):
            # measured per layer in output steps on the executor's own inputs
            result["requantization"] = {
                "layers": report.pop("requantized", {}),
                "argmax_equal": int((out.argmax(1) == theirs.argmax(1)).sum()),
                "samples": len(x), **({"error": report["error"]} if "error" in report else {})}
        report.pop("requantized", None)
        if model.meta.get("kept_thresholds"):  # layers whose requantization was unequal
            result.setdefault("requantization", {})["kept_thresholds"] = \
                model.meta["kept_thresholds"]
        agreement = result["agreement"]["qonnx_executor"]
        agreement["rounding"] = report
        agreement["explained"] = explained(agreement, requantized)
        if y is not None:
            result["accuracy"]["qonnx_executor"] = float((theirs.argmax(1) == y).mean())
    if "brevitas_forward" in refs:
        bt = refs["brevitas_forward"].trace(build_dir, model, x)
        # agreement on integers: every weighted layer's codes (a pool's output is the next
        # layer's input, compared there) and the last accumulators; the logits' float ops
        # (batch norm) round differently in PyTorch, so floats are only reported
        trace = [codes, *(t for t, layer in zip(golden.trace_codes(model, codes), model.layers,
                                                strict=True) if layer.weighted)]
        same = np.ones(len(x), bool)
        for ours, ref in zip(trace, bt[1], strict=True):
            same &= np.all(ours == ref, axis=1)
        # explained differences: layer by layer on Brevitas' own codes (`judge_codes`, no
        # float32 slack: it is the same float graph), the last accumulators exactly
        agrees = np.all(bt[1][0] == codes, axis=1)
        hidden = [lay.name for lay in model.layers if lay.weighted][:-1]
        after_bt = dict(zip(hidden, bt[1][1:-1], strict=True))
        for lay, acc_bt, theirs_bt in hidden_stages(model, bt[1][0], after_bt):
            if theirs_bt is None:
                agrees &= np.all(acc_bt == bt[1][-1], axis=1)
            else:
                ok = judge_codes(lay, acc_bt, np.zeros(lay.out_channels, np.int64), theirs_bt,
                                 requantized.get(lay.name, {}))[1]
                agrees &= np.all(ok, axis=1)
        result["agreement"]["brevitas_forward"] = compare(out, bt[0], same)
        result["agreement"]["brevitas_forward"]["explained"] = bool(agrees.all())
        result["agreement"]["brevitas_forward"]["float_outputs_equal"] = int(
            np.all(out == bt[0], axis=1).sum())
        if y is not None:
            result["accuracy"]["brevitas_forward"] = float((bt[0].argmax(1) == y).mean())
    if "onnxruntime" in refs:
        theirs = refs["onnxruntime"].trace(build_dir, model, x)[0]
        agreement = result["agreement"]["onnxruntime"] = compare(out, theirs)
        # its fused kernels show outputs only: a difference is explained where the IR
        # declares the layers whose float graph rounds (meta.inexact_layers), never else
        agreement["explained"] = agreement["equal"] == agreement["total"] or bool(
            model.meta.get("inexact_layers"))
        if y is not None:
            result["accuracy"]["onnxruntime"] = float((theirs.argmax(1) == y).mean())
    for name in backend_names:
        log.info("verify: running backend %s on %d samples", name, len(x))
        got = backends.run(name, model, build_dir, codes)
        result["agreement"][name] = compare(acc, np.asarray(got))
    result["all_equal"] = all(a["equal"] == a["total"] for a in result["agreement"].values())
    # every difference explained: the requantization's, measured (`explained`)
    result["passed"] = all(a.get("explained", a["equal"] == a["total"])
                           for a in result["agreement"].values())
    path = write_result(build_dir, "verify", model, result, whole_split)
    for k, a in result["agreement"].items():
        log.info("verify: golden vs %s: %d / %d equal%s", k, a["equal"], a["total"],
                 ", every difference explained (verify.json: rounding, requantization)"
                 if a["equal"] < a["total"] and a.get("explained") else "")
    log.info("verify: wrote %s", path)
    return result
