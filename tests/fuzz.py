"""Differential fuzzer: random Brevitas models, exported by Brevitas, lowered by qflow, run
by the golden model and compared with qonnx's executor (and every backend with golden).

The models are written here with brevitas.nn and brevitas.quant directly (not through
flow.models / flow.quantizers), so qflow is tested on models that nobody in qflow wrote.

Draw space (one seed -> one `spec`, a JSON-able dict, -> one model; see `draw`):
- input: shape (F,) or (C, H, W) with 2 <= F <= 40, C in 1..3, H, W in 1..6 (a Flatten
  follows the input quantizer of a rank-3 input); values normal around 0.3 times a random
  gain, plus an all-zero sample and samples exactly halfway between two levels of the
  input quantizer (its rounding ties);
- input quantizer (QuantIdentity): Int8ActPerTensorFloat, Uint8ActPerTensorFloat,
  Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint, ShiftedUint8ActPerTensorFloat
  at 2..8 bits, SignedBinaryActPerTensorConst, SignedTernaryActPerTensorConst;
- depth 1..4 QuantLinear layers, widths 3..40 (odd and even; the last 2..11), weights
  normal at a random magnitude, quantized by SignedBinaryWeightPerTensorConst,
  SignedTernaryWeightPerTensorConst, Int8WeightPerTensorFloat, Int8WeightPerChannelFloat,
  Int8WeightPerTensorFixedPoint, Int8WeightPerChannelFixedPoint or
  ShiftedUint8WeightPerTensorFloat (2..8 bits); no bias, a float bias, or a Brevitas
  Int8Bias / Int16Bias / Int32Bias (the activation before returns a QuantTensor);
- after each layer: no BatchNorm1d, one with random statistics (negative gammas
  included), or one whose channel 0 has gamma 0 (a constant channel);
- after each hidden layer, one activation: QuantReLU (Uint8ActPerTensorFloat or
  Uint8ActPerTensorFixedPoint, 1..8 bits), QuantHardTanh (Int8ActPerTensorFloatMinMaxInit
  or Int8ActPerTensorFixedPoint with a random clamp range, 2..8 / 1..8 bits, or the binary
  and ternary const quantizers) or QuantIdentity (Int8ActPerTensorFloat,
  Int8ActPerTensorFixedPoint, ShiftedUint8ActPerTensorFloat at 1..8 bits, or the binary
  and ternary const quantizers); nothing after the last layer (logits);
- scales: statistics-based scales set by three training-mode batches. Four draws in ten
  keep to power-of-two scales (fixed-point quantizers, binary/ternary weights with a
  constant scale 2^-4..2), whose float graph qflow lowers as exact; the others mix in
  float scales (and the binary/ternary weights' default 0.1), whose float32 graph rounds;
- about one draw in twelve adds a construct qflow refuses by design: an activation
  quantizer after the last layer, or a float Tanh before the first hidden activation.
  Any draw qflow refuses must end in a LoweringError / IRError naming the file and the
  node or graph ("refused").
Nothing is excluded from this space to hide a failure.

Lowering uses qflow's default activation form (auto: an 8-bit-like output, 5 bits and up,
whose float tail is affine becomes a fixed-point requantization, the rest thresholds);
`--activation` forces one.

Verdicts per seed (`check`):
- "exact": the IR lists no inexact or requantized layer and golden equals the executor on
  every sample, bit for bit;
- "requant": the IR has requantized layers and every difference from the executor is the
  requantization's measured one (`flow.verify.explained`: within its step bound, or with
  power-of-two scales only the integer function's tie and double rounding), departing
  first at a requantized layer unless a layer is inexact (then as "rounding");
- "rounding": the IR lists inexact layers and every difference from the executor is
  within float32 rounding of those layers (`flow.verify.rounding`, documented in
  docs/architecture.md: each stage checked on the executor's own inputs to it);
- "refused": lowering stopped with a clear error naming the file and the node or graph;
- "fail": anything else: a wrong answer, a backend differing from golden, an error that
  names nothing, or a traceback. A backend that does not build the model yet (requantized
  layers, while it takes only thresholds) is skipped and listed, not run.

`python -m tests.fuzz --seeds N --out DIR` runs N fresh seeds (from --start, default the
clock) and writes each failing model to DIR/<seed>/ (model.onnx, inputs.npy, executor.npy,
golden.npy, spec.json, verdict.json, repro.sh). `python -m tests.fuzz --replay DIR/<seed>`
re-checks a saved model without torch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flow import backends, golden
from flow.atomic import write_json, write_text
from flow.ir import IRError, Model
from flow.lower import DEFAULT_ACTIVATION_FORM, LoweringError, lower
from flow.verify import explained, qonnx_trace, rounding

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 96  # inputs per model: random, plus all-zero and halfway-between-levels samples

# Quantizers drawn, by role; a power-of-two draw (exact float graph) keeps to the second set.
WEIGHT_QUANTS = ("binary", "ternary", "int_tensor", "int_channel", "fixed_tensor",
                 "fixed_channel", "shifted")
WEIGHT_QUANTS_PO2 = ("binary", "ternary", "fixed_tensor", "fixed_channel")
INPUT_QUANTS = ("int", "uint", "fixed", "ufixed", "shifted", "binary", "ternary")
INPUT_QUANTS_PO2 = ("fixed", "ufixed", "binary", "ternary")
# activation module -> the quantizers drawn for it
ACT_QUANTS = {"relu": ("uint", "ufixed"), "hardtanh": ("int_minmax", "fixed", "binary", "ternary"),
              "identity": ("int", "fixed", "shifted", "binary", "ternary")}
ACT_QUANTS_PO2 = {"relu": ("ufixed",), "hardtanh": ("fixed", "binary", "ternary"),
                  "identity": ("fixed", "binary", "ternary")}
MULTI_BIT = ("int", "uint", "fixed", "ufixed", "shifted", "int_minmax")
BIASES = (None, "float", "int8", "int16", "int32")  # None: no bias; intN: Brevitas IntNBias
# None: no batch norm; "dead": random statistics with gamma 0 on channel 0 (a constant channel)
BATCH_NORMS = (None, "random", "random", "dead")
REFUSALS = ("final_act", "tanh")  # constructs qflow refuses by design (module docstring)


def draw(seed: int) -> dict[str, Any]:
    """The random architecture of one seed, as a JSON-able spec (see the module docstring)."""
    rng = np.random.default_rng(seed)
    po2 = bool(rng.random() < 0.4)
    acts, weights, inputs = ((ACT_QUANTS_PO2, WEIGHT_QUANTS_PO2, INPUT_QUANTS_PO2) if po2 else
                             (ACT_QUANTS, WEIGHT_QUANTS, INPUT_QUANTS))

    def bits(lo: int) -> int:
        return int(rng.integers(lo, 9))

    def act() -> dict[str, Any]:
        module = str(rng.choice(list(acts)))
        quant = str(rng.choice(acts[module]))
        spec: dict[str, Any] = {"module": module, "quant": quant}
        if quant in MULTI_BIT:
            # Brevitas exports no 1-bit quantizer with a zero point or a MinMax init
            spec["bits"] = bits(2 if quant in ("int_minmax", "shifted") else 1)
        if module == "hardtanh" and quant in MULTI_BIT:  # the clamp's range
            lo = -float(rng.uniform(0.1, 4))
            spec.update(min_val=lo, max_val=float(rng.uniform(0.1, 4)) if rng.random() < 0.7
                        else -lo)
        return spec

    rank = int(rng.choice([1, 3]))
    if rank == 1:
        shape = [int(rng.integers(2, 41))]
    else:
        shape = [int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 7))]
    in_q = str(rng.choice(inputs))
    depth = int(rng.integers(1, 5))
    layers = []
    for k in range(depth):
        wq = str(rng.choice(weights))
        weight: dict[str, Any] = {"quant": wq}
        if wq in ("binary", "ternary"):  # Brevitas' constant scale is 0.1 unless po2
            weight["scale"] = float(2.0 ** rng.integers(-4, 2)) if po2 else 0.1
        else:
            weight["bits"] = bits(2)
        layers.append({
            "out": int(rng.integers(3, 41)) if k < depth - 1 else int(rng.integers(2, 12)),
            "bias": BIASES[int(rng.integers(len(BIASES)))],
            "weight": weight,
            "weight_gain": float(10 ** rng.uniform(-1.5, 0.5)),
            "bn": BATCH_NORMS[int(rng.integers(len(BATCH_NORMS)))],
            "act": act() if k < depth - 1 else None,
        })
    refuse = str(rng.choice(REFUSALS)) if rng.random() < 1 / 12 else None
    if refuse == "tanh" and depth == 1:  # no hidden activation to put the Tanh before
        refuse = "final_act"
    return {"seed": seed, "po2": po2, "input_shape": shape,
            "input": {"quant": in_q, **({"bits": bits(2)} if in_q in MULTI_BIT else {})},
            "input_gain": float(10 ** rng.uniform(-1, 1)), "layers": layers, "refuse": refuse}


def _act_quant(spec: dict[str, Any]) -> Any:
    from brevitas import quant as bq

    table = {"int": bq.Int8ActPerTensorFloat, "uint": bq.Uint8ActPerTensorFloat,
             "fixed": bq.Int8ActPerTensorFixedPoint, "ufixed": bq.Uint8ActPerTensorFixedPoint,
             "shifted": bq.ShiftedUint8ActPerTensorFloat,
             "int_minmax": bq.Int8ActPerTensorFloatMinMaxInit,
             "binary": bq.SignedBinaryActPerTensorConst,
             "ternary": bq.SignedTernaryActPerTensorConst}
    q = table[spec["quant"]]
    return q.let(bit_width=spec["bits"]) if "bits" in spec else q


def _weight_quant(spec: dict[str, Any]) -> Any:
    from brevitas import quant as bq
    from brevitas.quant import fixed_point  # its per-channel quantizer is not re-exported

    table = {"binary": bq.SignedBinaryWeightPerTensorConst,
             "ternary": bq.SignedTernaryWeightPerTensorConst,
             "int_tensor": bq.Int8WeightPerTensorFloat,
             "int_channel": bq.Int8WeightPerChannelFloat,
             "fixed_tensor": bq.Int8WeightPerTensorFixedPoint,
             "fixed_channel": fixed_point.Int8WeightPerChannelFixedPoint,
             "shifted": bq.ShiftedUint8WeightPerTensorFloat}
    q = table[spec["quant"]]
    if "scale" in spec:
        return q.let(scaling_const=spec["scale"])
    return q.let(bit_width=spec["bits"]) if "bits" in spec else q


def random_inputs(spec: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """Float inputs of the spec's shape: normal, scaled by its input gain, shifted a little."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.0, (n, *spec["input_shape"])) * spec["input_gain"]
    return x.astype(np.float32)


def build(spec: dict[str, Any]) -> Any:
    """The spec as a Brevitas model in eval mode, statistics-based scales set by a few
    training-mode batches of its inputs, batch norm statistics randomized."""
    import torch
    from brevitas import quant as bq
    from brevitas.nn import QuantHardTanh, QuantIdentity, QuantLinear, QuantReLU
    from torch import nn

    torch.manual_seed(spec["seed"])
    # a quantized bias takes its scale from the input's: that activation returns a QuantTensor
    layers = spec["layers"]
    quant_bias = [lay["bias"] not in (None, "float") for lay in layers]
    modules: list[nn.Module] = [QuantIdentity(act_quant=_act_quant(spec["input"]),
                                              return_quant_tensor=quant_bias[0])]
    if len(spec["input_shape"]) > 1:
        modules.append(nn.Flatten())
    width = int(np.prod(spec["input_shape"]))
    biases = {"int8": bq.Int8Bias, "int16": bq.Int16Bias, "int32": bq.Int32Bias}
    for k, lay in enumerate(layers):
        linear = QuantLinear(width, lay["out"], bias=lay["bias"] is not None,
                             weight_quant=_weight_quant(lay["weight"]),
                             bias_quant=biases.get(lay["bias"]))
        with torch.no_grad():
            linear.weight.normal_(0.0, lay["weight_gain"])
        modules.append(linear)
        if lay["bn"]:
            modules.append(nn.BatchNorm1d(lay["out"]))
        act = lay["act"]
        if k == len(spec["layers"]) - 1 and spec["refuse"] == "final_act":
            act = {"module": "identity", "quant": "int", "bits": 4}
        if act is not None:
            if spec["refuse"] == "tanh" and k == 0:
                modules.append(nn.Tanh())
            kind = {"relu": QuantReLU, "hardtanh": QuantHardTanh, "identity": QuantIdentity}
            extra = {key: act[key] for key in ("min_val", "max_val") if key in act}
            modules.append(kind[act["module"]](act_quant=_act_quant(act), **extra,
                                               return_quant_tensor=k + 1 < len(layers)
                                               and quant_bias[k + 1]))
        width = lay["out"]
    model = nn.Sequential(*modules)
    model.train()
    with torch.no_grad():
        for b in range(3):
            model(torch.from_numpy(random_inputs(spec, 32, spec["seed"] + 1000 + b)))
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
        for m, lay in zip(norms, [lay for lay in layers if lay["bn"]], strict=True):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 2)
            m.running_var.copy_(torch.rand(c) * 5 + 0.05)
            m.weight.copy_(torch.randn(c))  # negative gammas flip channels
            m.bias.copy_(torch.randn(c))
            if lay["bn"] == "dead":
                m.weight[0] = 0.0
    return model.eval()


def inputs_for(model: Model, spec: dict[str, Any], n: int) -> np.ndarray:
    """Random inputs, one all-zero sample, and samples exactly halfway between two of the
    input quantizer's levels (ties of its rounding)."""
    x = random_inputs(spec, n, spec["seed"] + 1)
    x[0] = 0.0
    stage = model.input
    if stage.kind == "int" and not stage.preprocess:
        rng = np.random.default_rng(spec["seed"] + 2)
        lo, hi = stage.code_range
        k = rng.integers(lo, max(hi, lo + 1), size=x[1:n // 4].shape)
        x[1:n // 4] = ((k + 0.5 - stage.zero_point) * stage.scale).astype(np.float32)
    return x


@dataclass
class Outcome:
    """The verdict on one model: exact, requant, rounding, refused or fail (module
    docstring)."""

    seed: int
    verdict: str
    detail: str = ""
    activation: str = DEFAULT_ACTIVATION_FORM  # the form hidden activations were lowered in
    inexact_layers: list[str] = field(default_factory=list)
    samples: int = 0
    rounding: dict[str, Any] = field(default_factory=dict)  # flow.verify.rounding's report
    argmax_differs: int = 0  # samples whose argmax differs (rounding may flip near-ties)
    backends: dict[str, int] = field(default_factory=dict)  # name -> samples equal to golden
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> what it does not build
    requantized_layers: list[str] = field(default_factory=list)


def clear_refusal(e: Exception, path: Path) -> bool:
    """A refusal is clear when it names the file and the node or the graph."""
    msg = str(e)
    return str(path) in msg and ("node " in msg or ": graph:" in msg)


def check_onnx(seed: int, path: Path, x: np.ndarray, backend_names: tuple[str, ...] = (),
               build_dir: Path | None = None, activation: str = DEFAULT_ACTIVATION_FORM
               ) -> tuple[Outcome, dict[str, np.ndarray]]:
    """Lower the QONNX file (hidden activations in the form `activation`), compare golden
    with the executor (and backends with golden). Returns the verdict and the arrays a
    reproduction needs."""
    arrays: dict[str, np.ndarray] = {"inputs": x}
    try:
        model = lower(path, activation=activation)
    except (LoweringError, IRError) as e:
        if clear_refusal(e, path):
            return Outcome(seed, "refused", str(e), activation), arrays
        return Outcome(seed, "fail", f"unclear refusal: {type(e).__name__}: {e}",
                       activation), arrays
    inexact = list(model.meta.get("inexact_layers", []))
    ours = golden.run(model, x).reshape(len(x), -1)
    theirs, trace = qonnx_trace(path, x)
    arrays.update(golden=ours, executor=theirs)
    report = rounding(model, x, ours, theirs, trace)
    requantized = model.meta.get("requantized_layers", {})
    out = Outcome(seed, "rounding" if inexact else "requant" if requantized else "exact",
                  activation=activation, inexact_layers=inexact, samples=len(x), rounding=report,
                  argmax_differs=int((ours.argmax(1) != theirs.argmax(1)).sum()),
                  requantized_layers=list(requantized))
    equal = np.all(ours == theirs, axis=1)
    if not explained({"equal": int(equal.sum()), "total": len(x), "rounding": report},
                     requantized):
        unexplained = report["unexplained_samples"] or np.flatnonzero(~equal).tolist()
        out.verdict = "fail"
        out.detail = (f"samples {unexplained[:10]} differ from the executor beyond float32 "
                      f"rounding (inexact layers: {inexact}) and the requantized layers' "
                      f"bounds (first difference: {report['first_difference']})")
    if backend_names and out.verdict != "fail":
        from flow.export import compile_onnx

        assert build_dir is not None
        model = compile_onnx(path, build_dir, {}, activation=activation)
        codes = golden.quantize_input(model.input, x)
        acc = golden.run_codes(model, codes)
        for name in backend_names:
            missing = backends.unsupported(name, model)
            if missing:
                out.skipped[name] = ", ".join(missing)
                continue
            got = np.asarray(backends.run(name, model, build_dir, codes))
            same = np.all(got == acc, axis=1) if got.shape == acc.shape else np.zeros(len(x), bool)
            out.backends[name] = int(same.sum())
            if not same.all():
                arrays[name] = got
                out.verdict = "fail"
                out.detail += (f"backend {name}: {int((~same).sum())} of {len(x)} samples' "
                               "accumulators differ from golden; ")
    return out, arrays


def check(seed: int, work: Path, backend_names: tuple[str, ...] = (),
          activation: str = DEFAULT_ACTIVATION_FORM
          ) -> tuple[Outcome, dict[str, np.ndarray], dict[str, Any]]:
    """Draw, build, export and check one seed in `work` (a scratch folder), its hidden
    activations lowered in the form `activation`."""
    import torch

    from flow.export import export_qonnx

    spec = draw(seed)
    path = work / "model.onnx"
    try:
        net = build(spec)
        export_qonnx(net, torch.from_numpy(random_inputs(spec, 1, seed)), path)
    except Exception:  # a draw Brevitas itself cannot build or export: the fuzzer's bug
        detail = "the fuzzer drew a model Brevitas cannot build or export:\n"
        return Outcome(seed, "fail", detail + traceback.format_exc(), activation), {}, spec
    try:
        x = inputs_for(lower(path, activation=activation), spec, SAMPLES)
    except Exception:  # check_onnx judges the same error
        x = random_inputs(spec, SAMPLES, seed + 1)
    try:
        outcome, arrays = check_onnx(seed, path, x, backend_names, work / "build", activation)
    except Exception:
        outcome, arrays = Outcome(seed, "fail", traceback.format_exc(), activation), {"inputs": x}
    return outcome, arrays, spec


def save_repro(folder: Path, outcome: Outcome, arrays: dict[str, np.ndarray],
               spec: dict[str, Any] | None, onnx_path: Path) -> Path:
    """A folder that reproduces a failure: the model, its inputs, both outputs, the verdict
    and repro.sh with the one command that re-checks it."""
    folder.mkdir(parents=True, exist_ok=True)
    if onnx_path.is_file() and onnx_path.resolve() != (folder / "model.onnx").resolve():
        shutil.copyfile(onnx_path, folder / "model.onnx")
    for name, a in arrays.items():
        np.save(folder / f"{name}.npy", a)
    if spec is not None:
        write_json(folder / "spec.json", spec)
    write_json(folder / "verdict.json", asdict(outcome))
    backends_opt = f" --backends {','.join(outcome.backends)}" if outcome.backends else ""
    write_text(folder / "repro.sh",
               "#!/bin/sh\n# re-check this model: golden vs qonnx's executor"
               f"{' and backends vs golden' if backends_opt else ''}\n"
               f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m tests.fuzz --replay "
               f"{folder.resolve()}{backends_opt}\n")  # the form comes from verdict.json
    (folder / "repro.sh").chmod(0o755)
    return folder


def replay(folder: Path, backend_names: tuple[str, ...]) -> Outcome:
    """Re-check a saved model (model.onnx, inputs.npy) without torch, in the activation
    form it was checked in."""
    verdict = json.loads((folder / "verdict.json").read_text())
    x = np.load(folder / "inputs.npy")
    return check_onnx(int(verdict["seed"]), folder / "model.onnx", x, backend_names,
                      folder / "build", verdict.get("activation", DEFAULT_ACTIVATION_FORM))[0]


def run_seeds(seeds: list[int], out: Path, backend_names: tuple[str, ...],
              activation: str = DEFAULT_ACTIVATION_FORM) -> list[Outcome]:
    """Check every seed; each failing model goes to out/<seed>/."""
    import tempfile

    outcomes = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            outcome, arrays, spec = check(seed, Path(tmp), backend_names, activation)
            if outcome.verdict == "fail":
                save_repro(out / str(seed), outcome, arrays, spec, Path(tmp) / "model.onnx")
        print(f"seed {seed}: {outcome.verdict}"
              + (f" ({outcome.rounding.get('affected_samples', 0)} samples affected by "
                 f"rounding in {', '.join(outcome.inexact_layers)}, "
                 f"{outcome.argmax_differs} argmax)" if outcome.inexact_layers else "")
              + (f" (requantized: {', '.join(outcome.requantized_layers)})"
                 if outcome.requantized_layers else "")
              + (f" (skipped: {', '.join(f'{k}: {v}' for k, v in outcome.skipped.items())})"
                 if outcome.skipped else "")
              + (f": {outcome.detail.strip().splitlines()[-1]}" if outcome.detail else ""),
              flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=20, help="how many seeds to draw")
    p.add_argument("--start", type=int, help="first seed (default: from the clock)")
    p.add_argument("--out", type=Path, default=Path("build/fuzz"),
                   help="where failing models go, one folder per seed")
    p.add_argument("--backends", default="",
                   help="comma-separated backends to check against golden (rtl,hls,firmware)")
    p.add_argument("--replay", type=Path, help="re-check a saved failure folder")
    p.add_argument("--activation", choices=["thresholds", "requant", "auto"],
                   default=DEFAULT_ACTIVATION_FORM,
                   help="how hidden activations are lowered (as `qflow compile`)")
    a = p.parse_args(argv)
    names = tuple(b for b in a.backends.split(",") if b)
    if a.replay:
        outcome = replay(a.replay, names)
        print(json.dumps(asdict(outcome), indent=2))
        return int(outcome.verdict == "fail")
    start = a.start if a.start is not None else int(time.time() * 1000) % 2**31
    outcomes = run_seeds(list(range(start, start + a.seeds)), a.out, names, a.activation)
    counts = {v: sum(o.verdict == v for o in outcomes)
              for v in ("exact", "requant", "rounding", "refused", "fail")}
    print(f"fuzz: seeds {start}..{start + a.seeds - 1}: "
          + ", ".join(f"{n} {v}" for v, n in counts.items())
          + (f"; failing models in {a.out}/<seed>/" if counts["fail"] else ""))
    return int(counts["fail"] > 0)


if __name__ == "__main__":
    sys.exit(main())
