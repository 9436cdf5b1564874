"""Differential fuzzer: random Brevitas models, exported by Brevitas, lowered by qflow, run
by the golden model and compared with qonnx's executor (and every backend with golden).

The models are written with brevitas.nn and brevitas.quant directly, so qflow is tested on
models that nobody in qflow wrote; their draw space is in `tests/fuzz_space.py` (one seed ->
one `spec`, a JSON-able dict, -> one model).

Lowering uses qflow's default activation form (auto: an 8-bit-like output, 5 bits and up,
whose float tail is affine becomes a fixed-point requantization where that is proven equal
to the float graph's quantizer, the rest thresholds); `--activation` forces one.

Verdicts per seed (`check`):
- "exact": the IR lists no inexact layer (a requantization proven equal is exact) and
  golden equals the executor on every sample, bit for bit;
- "requant": the IR has requantized layers not proven equal to the float graph (listed
  inexact for that alone) and every difference from the executor is the
  requantization's measured one (`flow.verify.explained`: within its step bound, or with
  power-of-two scales only the integer function's tie and double rounding), departing
  first at a requantized layer unless a layer is inexact (then as "rounding");
- "rounding": the IR lists layers whose float product rounds and every difference from the executor is
  within float32 rounding of those layers (`flow.verify.rounding`, documented in
  docs/architecture.md: each stage checked on the executor's own inputs to it);
- "refused": lowering stopped with a clear error naming the file and the node or graph;
- "fail": anything else: a wrong answer, a backend differing from golden, an error that
  names nothing, or a traceback. A backend that does not build the model yet (requantized
  layers, while it takes only thresholds) is skipped and listed, not run.

`python -m tests.fuzz --seeds N --out DIR` runs N fresh seeds (from --start, default the
clock; `--arch mlp|cnn|both`: MLPs, the default and the draw of old, CNNs or either per
seed) and writes each failing model to DIR/<seed>/ (model.onnx, inputs.npy, executor.npy,
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
from flow.argtypes import non_negative_int, positive_int
from flow.atomic import write_json, write_text
from flow.ir import IRError, Model
from flow.lower import DEFAULT_ACTIVATION_FORM, DEFAULT_ROUNDING, LoweringError, lower
from flow.reference import qonnx_trace
from flow.verify import explained, rounding
from tests.fuzz_space import ARCHS, arch_of, build, draw, random_inputs

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 96  # inputs per model: random, plus all-zero and halfway-between-levels samples
# what --backends may name: every backend but the golden model, the reference itself
FUZZED_BACKENDS = tuple(b for b in backends.names() if b != "golden")

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
    rounding_form: str = DEFAULT_ROUNDING  # the requantizations' (flow.ir.Requant)


def clear_refusal(e: Exception, path: Path) -> bool:
    """A refusal is clear when it names the file and the node or the graph."""
    msg = str(e)
    return str(path) in msg and ("node " in msg or ": graph:" in msg)


def check_onnx(seed: int, path: Path, x: np.ndarray, backend_names: tuple[str, ...] = (),
               build_dir: Path | None = None, activation: str = DEFAULT_ACTIVATION_FORM,
               rounding_form: str = DEFAULT_ROUNDING) -> tuple[Outcome, dict[str, np.ndarray]]:
    """Lower the QONNX file (hidden activations in the form `activation`), compare golden
    with the executor (and backends with golden). Returns the verdict and the arrays a
    reproduction needs."""
    arrays: dict[str, np.ndarray] = {"inputs": x}
    try:
        model = lower(path, activation=activation, rounding=rounding_form)
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
    unproven = {k for k, v in requantized.items() if not v.get("proven_exact", False)}
    rounds = [k for k in inexact
              if k not in unproven or not requantized[k].get("float_product_exact", False)]
    out = Outcome(seed, "rounding" if rounds else "requant" if unproven else "exact",
                  activation=activation, inexact_layers=inexact, samples=len(x), rounding=report,
                  argmax_differs=int((ours.argmax(1) != theirs.argmax(1)).sum()),
                  requantized_layers=list(requantized), rounding_form=rounding_form)
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
        model = compile_onnx(path, build_dir, {}, activation=activation, rounding=rounding_form)
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
          activation: str = DEFAULT_ACTIVATION_FORM, arch: str = "mlp",
          rounding_form: str = DEFAULT_ROUNDING
          ) -> tuple[Outcome, dict[str, np.ndarray], dict[str, Any]]:
    """Draw (an `arch`: mlp, cnn or both), build, export and check one seed in `work` (a
    scratch folder), its hidden activations lowered in the form `activation`."""
    import torch

    from flow.export import export_qonnx

    spec = draw(seed, arch)
    path = work / "model.onnx"
    try:
        net = build(spec)
        export_qonnx(net, torch.from_numpy(random_inputs(spec, 1, seed)), path)
    except Exception:  # a draw Brevitas itself cannot build or export: the fuzzer's bug
        detail = "the fuzzer drew a model Brevitas cannot build or export:\n"
        return Outcome(seed, "fail", detail + traceback.format_exc(), activation), {}, spec
    try:
        x = inputs_for(lower(path, activation=activation, rounding=rounding_form), spec, SAMPLES)
    except Exception:  # check_onnx judges the same error
        x = random_inputs(spec, SAMPLES, seed + 1)
    try:
        outcome, arrays = check_onnx(seed, path, x, backend_names, work / "build", activation,
                                     rounding_form)
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
                      folder / "build", verdict.get("activation", DEFAULT_ACTIVATION_FORM),
                      verdict.get("rounding_form", DEFAULT_ROUNDING))[0]


def run_seeds(seeds: list[int], out: Path, backend_names: tuple[str, ...],
              activation: str = DEFAULT_ACTIVATION_FORM, arch: str = "mlp",
              rounding_form: str = DEFAULT_ROUNDING) -> list[Outcome]:
    """Check every seed; each failing model goes to out/<seed>/."""
    import tempfile

    outcomes = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            outcome, arrays, spec = check(seed, Path(tmp), backend_names, activation, arch,
                                          rounding_form)
            if outcome.verdict == "fail":
                save_repro(out / str(seed), outcome, arrays, spec, Path(tmp) / "model.onnx")
        print(f"seed {seed} ({arch_of(spec)}): {outcome.verdict}"
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
    p.add_argument("--seeds", type=positive_int, default=20, help="how many seeds to draw")
    p.add_argument("--start", type=non_negative_int, help="first seed (default: from the clock)")
    p.add_argument("--out", type=Path, default=Path("build/fuzz"),
                   help="where failing models go, one folder per seed")
    p.add_argument("--backends", default="",
                   help="comma-separated backends to check against golden (rtl,hls,firmware)")
    p.add_argument("--replay", type=Path, help="re-check a saved failure folder")
    p.add_argument("--activation", choices=["thresholds", "requant", "auto"],
                   default=DEFAULT_ACTIVATION_FORM,
                   help="how hidden activations are lowered (as `qflow compile`)")
    p.add_argument("--rounding", choices=["half_even", "tflite"], default=DEFAULT_ROUNDING,
                   help="the requantizations' rounding (as `qflow compile`)")
    p.add_argument("--arch", choices=[*ARCHS, "both"], default="mlp",
                   help="the models drawn: MLPs (the seeds of old), CNNs, or either per seed")
    a = p.parse_args(argv)
    names = tuple(b for b in a.backends.split(",") if b)
    unknown = [b for b in names if b not in FUZZED_BACKENDS]
    if unknown:  # before any model is drawn: a typo would write every model as a failure
        p.error(f"argument --backends: unknown {', '.join(map(repr, unknown))} "
                f"(choose from {', '.join(FUZZED_BACKENDS)})")
    if a.replay:
        outcome = replay(a.replay, names)
        print(json.dumps(asdict(outcome), indent=2))
        return int(outcome.verdict == "fail")
    start = a.start if a.start is not None else int(time.time() * 1000) % 2**31
    outcomes = run_seeds(list(range(start, start + a.seeds)), a.out, names, a.activation,
                         a.arch, a.rounding)
    counts = {v: sum(o.verdict == v for o in outcomes)
              for v in ("exact", "requant", "rounding", "refused", "fail")}
    print(f"fuzz: seeds {start}..{start + a.seeds - 1}: "
          + ", ".join(f"{n} {v}" for v, n in counts.items())
          + (f"; failing models in {a.out}/<seed>/" if counts["fail"] else ""))
    return int(counts["fail"] > 0)


if __name__ == "__main__":
    sys.exit(main())
