"""Quantization analysis of a trained build: SQNR per layer (weights and activations).

SQNR (dB) = 10 log10(P_signal / P_error), P = mean square, error = quantized - float; per
tensor and per channel (weights: per output row; activations: per feature). Infinite
when the quantizer is exact on that data, undefined (None in JSON) when the signal is 0.
The IR's cost and energy model is in flow.report.cost (no torch there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# ---- SQNR ---------------------------------------------------------------------------------

def sqnr_db(x: np.ndarray, q: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """10 log10(mean x^2 / mean (q - x)^2), over the whole tensor or per index of `axis`."""
    x = np.asarray(x, dtype=np.float64)
    err = np.asarray(q, dtype=np.float64) - x
    reduce = None if axis is None else tuple(d for d in range(x.ndim) if d != axis % x.ndim)
    signal = np.mean(x * x, axis=reduce)
    noise = np.mean(err * err, axis=reduce)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * (np.log10(signal) - np.log10(noise))
    db = np.where(signal == 0, np.nan, db)  # no signal: undefined, even if the error is 0
    return float(db) if axis is None else db


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def summarize(per_tensor: float, per_channel: np.ndarray) -> dict[str, Any]:
    """JSON-safe SQNR record: infinite (exact) and undefined (no signal) values become
    None and are counted instead."""
    pc = np.asarray(per_channel, dtype=np.float64)
    finite = pc[np.isfinite(pc)]
    return {
        "per_tensor_db": _finite(per_tensor),
        "exact": bool(np.isposinf(per_tensor)),
        "channels": int(pc.size),
        "channels_exact": int(np.isposinf(pc).sum()),
        "channels_no_signal": int(np.isnan(pc).sum()),
        "per_channel_min_db": _finite(finite.min()) if finite.size else None,
        "per_channel_median_db": _finite(np.median(finite)) if finite.size else None,
        "per_channel_max_db": _finite(finite.max()) if finite.size else None,
        "per_channel_db": [_finite(v) for v in pc],
    }


def _named_quant_modules(model: nn.Module) -> list[tuple[str, str, Any]]:  # Brevitas layers
    """(IR-style layer name, role, module) for each QuantLinear and QuantIdentity, in order:
    QuantLinear k is dense{k}; a QuantIdentity is the input quantizer before the first
    QuantLinear and dense{k}'s activation after it."""
    from brevitas.nn import QuantIdentity, QuantLinear

    out, k = [], -1
    for m in model.modules():
        if isinstance(m, QuantLinear):
            k += 1
            out.append((f"dense{k}", "weight", m))
        elif isinstance(m, QuantIdentity):
            out.append(("input" if k < 0 else f"dense{k}", "act", m))
    return out


def weight_sqnr(model: nn.Module) -> list[dict[str, Any]]:
    """SQNR of each QuantLinear's latent float weights against their quantized values."""
    rows = []
    with torch.no_grad():
        for pos, (name, role, m) in enumerate(_named_quant_modules(model)):
            if role != "weight":
                continue
            w = m.weight.detach().numpy()
            q = m.quant_weight().value.detach().numpy()
            rows.append({"layer": name, "tensor": "weight", "position": pos,
                         "shape": list(w.shape),
                         **summarize(float(sqnr_db(w, q)), np.asarray(sqnr_db(w, q, axis=0)))})
    return rows


def activation_sqnr(model: nn.Module, x: np.ndarray, batch: int = 1000) -> list[dict[str, Any]]:
    """SQNR of each activation quantizer's float input against its quantized output, on `x`,
    captured with forward hooks (so the data is exactly what the trained model sees)."""
    mods = [(n, m, pos) for pos, (n, role, m) in enumerate(_named_quant_modules(model))
            if role == "act"]
    seen: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {i: [] for i in range(len(mods))}

    def hook(i: int) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def capture(_m: nn.Module, inp: tuple[Any, ...], out: Any) -> None:
            seen[i].append((_plain(inp[0]), _plain(out)))
        return capture

    handles = [m.register_forward_hook(hook(i)) for i, (_, m, _) in enumerate(mods)]
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(x), batch):
                model(torch.from_numpy(x[s:s + batch]))
    finally:
        for h in handles:
            h.remove()
    rows = []
    for i, (name, _, pos) in enumerate(mods):
        f = np.concatenate([a for a, _ in seen[i]]).reshape(len(x), -1)
        q = np.concatenate([b for _, b in seen[i]]).reshape(len(x), -1)
        rows.append({"layer": name, "tensor": "input" if name == "input" else "activation",
                     "position": pos, "samples": len(x),
                     **summarize(float(sqnr_db(f, q)), np.asarray(sqnr_db(f, q, axis=1)))})
    return rows


def _plain(t: Any) -> np.ndarray:
    return (t.value if hasattr(t, "value") else t).detach().numpy()


def sqnr(build_dir: Path, limit: int | None = 2000) -> dict[str, Any]:
    """Weight and activation SQNR of a build's trained model, activations on its test split."""
    from flow.train.trainer import load_trained

    model, cfg, ds = load_trained(Path(build_dir))
    x = ds.x_test[:limit]
    rows = weight_sqnr(model) + activation_sqnr(model, x)
    return {"dataset": ds.name, "split": "test", "samples": len(x),
            "tensors": sorted(rows, key=lambda r: r["position"])}  # in network order
