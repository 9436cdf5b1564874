"""`qflow sweep CONFIG`: post-training quantization of a config's float model at 1..8 bits.

The float twin of the config is trained (or its finished float_checkpoint.pt reused, the
file `qflow train` writes for its float baseline, when it records exactly this config's
training inputs: another seed's float model has seen this seed's test split), then
quantized with Brevitas at each bit width, weights per tensor or per output channel,
activations per tensor, calibrated on training batches and measured on the test split.
Beside it: the build's QAT result (train.json, when trained from this config) and PyTorch's
own int8 quantization (torch.ao dynamic and static) of the same float model. Writes
sweep.json and sweep.png into the build folder.

How a bit width b maps onto the quantizer options (flow/train/quantizers.py):
  weights      b = 1: `binary` (per tensor, scale 1) or `binary_xnor` (per channel, mean |w|);
               b >= 2: `int` (symmetric, narrow, scale from max |w|), float scales
  activations  Hardtanh twins (binary / int configs): b = 1 `binary`, b >= 2 `int` over the
               Hardtanh range [-1, 1]; ReLU twins (uint / lsq / int_asym): `uint`, its range
               calibrated from statistics
  the input quantizer stays as configured; the last layer takes the swept weight spec too.
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from flow import data as datasets
from flow.atomic import write_json
from flow.buildfolder import claim, writing
from flow.train import config as configs
from flow.train import models
from flow.train.checkpoint import first_difference, load_checkpoint, training_inputs
from flow.train.trainer import calibrate, evaluate, fit, seed_all, trained_from

log = logging.getLogger("qflow.sweep")

GRANULARITIES = ("per_tensor", "per_channel")
RELU_ACTS = ("uint", "lsq", "int_asym")  # whose float twin is a ReLU (flow/train/models.py)
QUICK_FLOAT_EPOCHS = 3
QUICK_CALIBRATION_BATCHES = 4
CALIBRATION_SAMPLES = 1280  # training samples the torch static int8 observers see


def parse_bits(text: str) -> list[int]:
    """'1..8', '2,4,8' or '4' -> sorted bit widths, each in 1..8."""
    m = re.fullmatch(r"\s*(\d+)\s*\.\.\s*(\d+)\s*", text)
    try:
        bits = list(range(int(m[1]), int(m[2]) + 1)) if m else \
            [int(b) for b in text.split(",") if b.strip()]
    except ValueError as e:
        raise ValueError(f"--bits {text!r}: expected a range like 1..8 or a list like 2,4,8") \
            from e
    if not bits or any(not 1 <= b <= 8 for b in bits):
        raise ValueError(f"--bits {text!r}: bit widths must lie in 1..8")
    return sorted(set(bits))


def ptq_spec(model_spec: dict[str, Any], bits: int, per_channel: bool) -> tuple[dict[str, Any],
                                                                                 bool]:
    """The config's model section quantized at `bits`, and whether its activation ranges
    come from calibration (ReLU twins) rather than the Hardtanh range."""
    if bits == 1:
        w: dict[str, Any] = {"quant": "binary_xnor" if per_channel else "binary"}
    else:
        w = {"quant": "int", "bits": bits, "per_channel": per_channel, "po2": False}
    relu = model_spec.get("act", {}).get("quant", "binary") in RELU_ACTS
    if relu:
        a: dict[str, Any] = {"quant": "uint", "bits": bits, "po2": False}
    elif bits == 1:
        a = {"quant": "binary"}
    else:
        a = {"quant": "int", "bits": bits, "max_val": 1.0, "po2": False}
    return {**model_spec, "weight": w, "last_weight": w, "act": a}, relu


def _not_this_float_model(state: dict[str, Any], cfg: dict[str, Any]) -> str | None:
    """Why a float checkpoint is not this config's float model, or None when it records
    exactly cfg's training inputs (another seed's model has trained on this seed's test
    split)."""
    recorded = state.get("inputs")
    if recorded is None:
        return "records no training inputs (written by an older qflow)"
    if not isinstance(state.get("epoch"), int):
        return "records no epoch count"
    differs = first_difference(recorded, training_inputs(cfg))
    return None if differs is None else f"was trained with a different {differs}"


def float_model(cfg: dict[str, Any], ds: datasets.Dataset, out: Path, quick: bool
                ) -> tuple[models.QuantNet, dict[str, Any]]:
    """The config's float twin: a finished float_checkpoint.pt in `out` trained from this
    config's exact training inputs is reused (a partial one resumed), otherwise it is
    trained; --quick trains a few epochs and keeps nothing, and so does a retraining beside
    another training's checkpoint (which stays as it is)."""
    t = cfg["train"]
    epochs = t.get("float_epochs") or t["epochs"]
    ckpt = out / "float_checkpoint.pt"
    state = load_checkpoint(ckpt, "delete it to train the float model again") \
        if ckpt.exists() else None
    mismatch = None if state is None else _not_this_float_model(state, cfg)
    if mismatch is not None:
        log.warning("sweep: %s %s; training the float model again (not kept: delete the file "
                    "to keep the new one)", ckpt, mismatch)
    finished = state is not None and mismatch is None and state["epoch"] >= epochs
    keep = finished or (not quick and mismatch is None)
    seed_all(cfg["seed"])  # as `qflow train`, so the float baseline is the same model
    model = models.build(cfg["model"], ds.input_shape, ds.classes, quantized=False)
    if keep:
        fit(model, ds, cfg, epochs, "float", ckpt, resume=True)
    else:
        epochs = min(epochs, QUICK_FLOAT_EPOCHS) if quick else epochs
        fit(model, ds, cfg, epochs, "float (quick)" if quick else "float")
    model.eval()
    info = {"epochs": epochs, "reused_checkpoint": finished,
            "checkpoint": str(ckpt) if keep else None,
            "test_accuracy": evaluate(model, ds.x_test, ds.y_test)}
    if mismatch is not None:
        info["not_reused"] = f"{ckpt} {mismatch}"
    return model, info


def _weight_count(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))


def ptq_point(cfg: dict[str, Any], ds: datasets.Dataset, fmodel: models.QuantNet, bits: int,
              per_channel: bool, batches: int) -> dict[str, Any]:
    spec, calibrated = ptq_spec(cfg["model"], bits, per_channel)
    model = models.build(spec, ds.input_shape, ds.classes, calibrate=calibrated)
    # the float twin has the same parameter names; quantizer state stays at its init
    model.load_state_dict(fmodel.state_dict(), strict=False)
    calibrate(model, ds, batches, cfg["train"]["batch_size"])
    return {"bits": bits, "granularity": GRANULARITIES[per_channel],
            "weight_quant": spec["weight"]["quant"], "act_quant": spec["act"]["quant"],
            "weight_bytes": _weight_count(model) * bits / 8,
            "test_accuracy": evaluate(model, ds.x_test, ds.y_test)}


def model_bit_widths(model: nn.Module) -> dict[str, float]:
    """Weight and activation bit widths of a Brevitas model, as its quantizers report them
    (first hidden layer's; the input quantizer is not an activation)."""
    from brevitas.nn import QuantIdentity, QuantLinear

    w = [float(m.weight_quant.bit_width()) for m in model.modules() if isinstance(m, QuantLinear)]
    a = [float(m.act_quant.bit_width()) for m in model.modules() if isinstance(m, QuantIdentity)]
    return {"weight_bits": w[0], "act_bits": a[1] if len(a) > 1 else a[0]}


def qat_result(out: Path, cfg: dict[str, Any], ds: datasets.Dataset) -> dict[str, Any] | None:
    """The build's QAT (or PTQ) result from train.json, with the bit widths of its config;
    None unless the build was trained from cfg's training inputs (another config's result
    is not this one's)."""
    import json

    path = out / "train.json"
    if not trained_from(out, cfg):
        return None
    doc = json.loads(path.read_text())
    model = models.build(cfg["model"], ds.input_shape, ds.classes)
    return {"source": str(path), "mode": doc.get("mode"), "config": cfg["name"],
            "test_accuracy": doc.get("test_accuracy"),
            "float_test_accuracy": doc.get("float_test_accuracy"),
            **model_bit_widths(model)}


class _Center(nn.Module):
    """x -> 2x - 1, the bipolar centring of QuantNet.forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 * x - 1.0


def torch_twin(fmodel: models.QuantNet) -> nn.Sequential:
    """The float twin as plain torch modules (nn.Linear, not QuantLinear) between Quant/
    DeQuant stubs, the form torch.ao's eager quantization maps."""
    from brevitas.nn import QuantLinear
    from torch.ao.quantization import DeQuantStub, QuantStub

    layers: list[nn.Module] = [nn.Flatten()] + ([_Center()] if fmodel.center else [])
    layers.append(QuantStub())
    for m in fmodel.features:
        if isinstance(m, QuantLinear):
            lin = nn.Linear(m.in_features, m.out_features, bias=False)
            lin.weight.data.copy_(m.weight.data)
            layers.append(lin)
        elif not isinstance(m, (nn.Identity, nn.Dropout)):  # both identities in eval
            layers.append(copy.deepcopy(m))
    layers.append(DeQuantStub())
    return nn.Sequential(*layers).eval()


def _state_bytes(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue())


def torch_baseline(fmodel: models.QuantNet, ds: datasets.Dataset) -> dict[str, Any]:
    """torch.ao.quantization int8 of the float model: dynamic (weights int8, activations
    quantized on the fly) and static (Linear+BatchNorm fused, observers calibrated)."""
    import torch.ao.quantization as tq

    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "qnnpack") if e in engines), None)
    twin = torch_twin(fmodel)
    n_w = _weight_count(twin)
    result: dict[str, Any] = {"engine": engine, "torch": torch.__version__, "float32": {
        "test_accuracy": evaluate(twin, ds.x_test, ds.y_test),
        "state_dict_bytes": _state_bytes(twin), "weight_bytes": n_w * 4}}
    if engine is None:
        result["error"] = f"no fbgemm/qnnpack engine in {engines}"
        return result
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API still works here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        dyn = tq.quantize_dynamic(copy.deepcopy(twin), {nn.Linear}, dtype=torch.qint8)
        static = copy.deepcopy(twin)
        pairs = [[str(i), str(i + 1)] for i in range(len(static) - 1)
                 if isinstance(static[i], nn.Linear) and isinstance(static[i + 1], nn.BatchNorm1d)]
        static = tq.fuse_modules(static, pairs)
        static.qconfig = tq.get_default_qconfig(engine)
        tq.prepare(static, inplace=True)
        with torch.no_grad():
            static(torch.from_numpy(ds.x_train[:CALIBRATION_SAMPLES]))
        tq.convert(static, inplace=True)
    for name, m in (("dynamic_int8", dyn), ("static_int8", static)):
        result[name] = {"test_accuracy": evaluate(m, ds.x_test, ds.y_test),
                        "state_dict_bytes": _state_bytes(m), "weight_bytes": n_w}
    return result


def sweep(config_path: Path, out: Path | None = None, bits: list[int] | None = None,
          quick: bool = False) -> dict[str, Any]:
    cfg = configs.load(Path(config_path))
    if cfg["model"]["arch"] != "mlp":
        raise configs.ConfigError(f"{config_path}: model.arch: the bit-width sweep compares "
                                  "against torch's eager int8 of an MLP; it takes mlp configs")
    with writing(Path(out) if out else Path("build") / cfg["name"], create=True) as folder:
        claim(folder)  # a build (or a new folder): never a user's folder
        return _sweep(cfg, config_path, folder, bits or list(range(1, 9)), quick)


def _sweep(cfg: dict[str, Any], config_path: Path, out: Path, bits: list[int], quick: bool
           ) -> dict[str, Any]:
    ds = datasets.load(cfg["data"], cfg["seed"])
    fmodel, finfo = float_model(cfg, ds, out, quick)
    batches = QUICK_CALIBRATION_BATCHES if quick else cfg["train"]["calibration_batches"]
    grid = [(b, pc) for b in bits for pc in (False, True)]
    points = []
    for b, pc in tqdm(grid, desc="ptq sweep", unit="point", disable=None):
        points.append(ptq_point(cfg, ds, fmodel, b, pc, batches))
        log.info("sweep: %d bits %s: test accuracy %.4f", b, GRANULARITIES[pc],
                 points[-1]["test_accuracy"])
    result = {"config": str(config_path), "name": cfg["name"], "dataset": ds.name,
              "test_samples": len(ds.x_test), "quick": quick, "calibration_batches": batches,
              "float": finfo, "ptq": points, "qat": qat_result(out, cfg, ds),
              "torch_int8": torch_baseline(fmodel, ds)}
    write_json(out / "sweep.json", result)
    plot_sweep(result, out / "sweep.png")
    log.info("sweep: wrote %s and %s", out / "sweep.json", out / "sweep.png")
    return result


def plot_sweep(result: dict[str, Any], path: Path) -> Path:
    """Test accuracy against bit width: PTQ per tensor / per channel, float, QAT, torch int8."""
    from flow.report.plots import figure, save_figure

    fig, (ax,) = figure()
    for gran in GRANULARITIES:
        pts = [p for p in result.get("ptq", []) if p.get("granularity") == gran]
        if pts:
            ax.plot([p["bits"] for p in pts], [p["test_accuracy"] for p in pts], marker="o",
                    label=f"Brevitas PTQ, weights {gran.replace('_', ' ')}")
    f_acc = (result.get("float") or {}).get("test_accuracy")
    if f_acc is not None:
        ax.axhline(f_acc, color="k", ls="--", lw=1, label=f"float32 ({f_acc:.3f})")
    qat = result.get("qat") or {}
    if qat.get("test_accuracy") is not None:
        ax.plot([qat["weight_bits"]], [qat["test_accuracy"]], "r*", ms=14,
                label=f"QAT W{qat['weight_bits']:g}A{qat['act_bits']:g} (train.json)")
    for name, marker in (("dynamic_int8", "s"), ("static_int8", "D")):
        r = (result.get("torch_int8") or {}).get(name)
        if r:
            ax.plot([8], [r["test_accuracy"]], marker, ms=8, label=f"torch.ao {name}")
    ax.set_xlabel("bits (weights and activations)")
    ax.set_ylabel("test accuracy")
    ax.set_xticks(range(1, 9))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{result.get('name', '')}: accuracy vs bit width")
    return save_figure(fig, path)


def sweep_command(a: argparse.Namespace) -> None:
    sweep(Path(a.config), Path(a.out) if a.out else None, parse_bits(a.bits), a.quick)

