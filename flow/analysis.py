"""Quantization analysis of a build: SQNR per layer, and a cost model (MACs, bits, memory,
energy at 45 nm) of the integer IR beside its float32 twin.

SQNR (dB) = 10 log10(P_signal / P_error), P = mean square, error = quantized - float; per
tensor and per channel (weights: per output row; activations: per feature). Infinite
when the quantizer is exact on that data, undefined (None in JSON) when the signal is 0.

Energy model: operation costs are Horowitz's 45 nm table (ENERGY_45NM_PJ, the one place
the numbers live); everything else is a formula over it, stated in ENERGY_MODEL (which the
report prints beside the figures).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from flow.datatypes import bits_for_range
from flow.ir import DenseLayer, Model

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
# 45 nm, 0.9 V: energy per operation in pJ, keyed by (operation, operand bits).
ENERGY_45NM_PJ: dict[tuple[str, int], float] = {
    ("int_add", 8): 0.03, ("int_add", 32): 0.1,
    ("int_mult", 8): 0.2, ("int_mult", 32): 3.1,
    ("fp_add", 16): 0.4, ("fp_add", 32): 0.9,
    ("fp_mult", 16): 1.1, ("fp_mult", 32): 3.7,
    ("sram_read", 32): 5.0,  # 32-bit read of an 8 KB SRAM
    ("dram_read", 32): 640.0,  # 32-bit DRAM read
}
ENERGY_SOURCE = "Horowitz, ISSCC 2014, 45 nm (0.9 V)"
WORD_BITS = 32  # the memory rows of the table are per 32-bit word
ENERGY_MODEL = (
    "int add of b bits: linear in b through the 8b and 32b points (proportional to b below "
    "8b and above 32b, linear interpolation between), as a ripple adder has b cells.",
    "int mult of a w-bit by an a-bit operand: linear in w*a through the 8x8 and 32x32 points "
    "(same piecewise rule), as an array multiplier has w*a partial-product cells.",
    "dense MAC: one mult at (weight bits x input bits) plus one add at the accumulator width; "
    "with BIPOLAR or TERNARY on either side there is no multiplier: the sign picks add or "
    "subtract, one add at the accumulator width.",
    "BIPOLAR x BIPOLAR is XNOR-popcount: per output, in_features XNORs, each costed as a 1-bit "
    "add (an upper bound: a full-adder cell holds two XOR gates and the carry), plus a popcount "
    "adder tree over the in_features bits (level k adds pairs of k-bit values).",
    "thresholds: one comparison (a subtraction, so an add) per threshold per output at the "
    "accumulator (XNOR: popcount) width; the last layer's accumulators become logits with one "
    "fp32 mult + add per class (the output stage's scale and offset).",
    "memory: every weight, threshold and activation bit moves once per inference through a "
    "32-bit port of an on-chip SRAM, one sram_read (the table's 8 KB SRAM) per started 32-bit "
    "word, writes costed as reads; 'dram_weights_pj' is the same total with the weights "
    "fetched by dram_read instead, the case when they do not fit on chip.",
    "folding (PE/SIMD) changes cycles, not the operation count, so it is not in the model.",
    "float32 twin: the same layers with an fp32 mult + fp32 add per MAC, batch norm folded to a "
    "per-channel fp32 mult + add, a clamp activation on hidden layers (one comparison, costed "
    "as an fp32 add), fp32 weights and activations.",
)


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


def _named_quant_modules(model: nn.Module) -> list[tuple[str, str, nn.Module]]:
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
                         "shape": list(w.shape), **summarize(sqnr_db(w, q), sqnr_db(w, q, axis=0))})
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
                     **summarize(sqnr_db(f, q), sqnr_db(f, q, axis=1))})
    return rows


def _plain(t: Any) -> np.ndarray:
    return (t.value if hasattr(t, "value") else t).detach().numpy()


def sqnr(build_dir: Path, limit: int | None = 2000) -> dict[str, Any]:
    """Weight and activation SQNR of a build's trained model, activations on its test split."""
    from flow.train import load_trained

    model, cfg, ds = load_trained(Path(build_dir))
    x = ds.x_test[:limit]
    rows = weight_sqnr(model) + activation_sqnr(model, x)
    return {"dataset": ds.name, "split": "test", "samples": len(x),
            "tensors": sorted(rows, key=lambda r: r["position"])}  # in network order


# ---- energy -------------------------------------------------------------------------------

def _int_scaled(op: str, size: float, law: int) -> float:
    """Energy of `op` at `size` (bits for law 1, bits x bits for law 2) from the 8b and 32b
    points: proportional below 8b and above 32b, linear in `size` between them."""
    lo, hi = 8**law, 32**law
    e_lo, e_hi = ENERGY_45NM_PJ[(op, 8)], ENERGY_45NM_PJ[(op, 32)]
    if size <= lo:
        return e_lo * size / lo
    if size >= hi:
        return e_hi * size / hi
    return e_lo + (e_hi - e_lo) * (size - lo) / (hi - lo)


def int_add_pj(bits: int) -> float:
    return _int_scaled("int_add", bits, 1)


def int_mult_pj(w_bits: int, a_bits: int) -> float:
    return _int_scaled("int_mult", w_bits * a_bits, 2)


def popcount_tree(n: int) -> list[tuple[int, int]]:
    """(adders, width) per level of a tree summing n 1-bit values: level k adds pairs of
    k-bit values (an odd one passes through)."""
    levels, count, width = [], n, 1
    while count > 1:
        levels.append((count // 2, width))
        count, width = count - count // 2, width + 1
    return levels


class _Terms:
    """Energy terms of one layer: (what, operation, bits, count, pJ each), summed by kind."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, kind: str, op: str, bits: int, count: int, each: float) -> None:
        if count:
            self.rows.append({"kind": kind, "op": op, "bits": bits, "count": int(count),
                              "pj_each": each, "pj": each * count})

    def total(self, kind: str | None = None) -> float:
        return float(sum(r["pj"] for r in self.rows if kind is None or r["kind"] == kind))


def _memory(t: _Terms, what: str, bits: int) -> None:
    t.add("memory", f"sram_read ({what})", WORD_BITS, math.ceil(bits / WORD_BITS),
          ENERGY_45NM_PJ[("sram_read", WORD_BITS)])


def _dram_weights(weight_bits: int) -> float:
    words = math.ceil(weight_bits / WORD_BITS)
    return words * (ENERGY_45NM_PJ[("dram_read", WORD_BITS)]
                    - ENERGY_45NM_PJ[("sram_read", WORD_BITS)])


def _layer_record(name: str, layer: DenseLayer, datapath: str, w_bits: int, a_bits: int,
                  out_bits: int, acc_bits: int, aux_bits: int, t: _Terms) -> dict[str, Any]:
    n_w = layer.in_features * layer.out_features
    weight_total = n_w * w_bits
    memory = t.total("memory")
    return {
        "layer": name, "in_features": layer.in_features, "out_features": layer.out_features,
        "datapath": datapath, "macs": n_w, "weight_bits": w_bits, "act_bits": a_bits,
        "out_bits": out_bits, "acc_bits": acc_bits,
        "weight_bytes": weight_total / 8, "aux_bytes": aux_bits / 8,
        "act_in_bytes": layer.in_features * a_bits / 8,
        "act_out_bytes": layer.out_features * out_bits / 8,
        "compute_pj": t.total("compute"), "memory_pj": memory, "total_pj": t.total(),
        "dram_weights_pj": t.total() + _dram_weights(weight_total), "terms": t.rows,
    }


def quantized_layer_cost(layer: DenseLayer, last: bool) -> dict[str, Any]:
    """Operation counts, bits, bytes and energy of one integer IR layer (see module doc)."""
    n_in, n_out = layer.in_features, layer.out_features
    macs = n_in * n_out
    w_t, a_t = layer.weight_dtype, layer.input_dtype
    w_bits, a_bits, acc_bits = w_t.bits, a_t.bits, layer.acc_dtype.bits
    t = _Terms()
    if layer.is_xnor:
        datapath = "xnor-popcount"
        t.add("compute", "xnor", 1, macs, int_add_pj(1))
        for adders, width in popcount_tree(n_in):
            t.add("compute", "int_add (popcount tree)", width, adders * n_out, int_add_pj(width))
        cmp_bits = bits_for_range(0, n_in)
    elif w_t.name in ("BIPOLAR", "TERNARY") or a_t.name in ("BIPOLAR", "TERNARY"):
        datapath = "add-sub"
        t.add("compute", "int_add (signed accumulate)", acc_bits, macs, int_add_pj(acc_bits))
        cmp_bits = acc_bits
    else:
        datapath = "int-mac"
        t.add("compute", f"int_mult ({w_bits}b x {a_bits}b)", w_bits * a_bits, macs,
              int_mult_pj(w_bits, a_bits))
        t.add("compute", "int_add (accumulate)", acc_bits, macs, int_add_pj(acc_bits))
        cmp_bits = acc_bits
    act = layer.activation
    aux_bits = 0
    if act is not None:
        t.add("compute", "int_add (threshold compare)", cmp_bits, n_out * act.count,
              int_add_pj(cmp_bits))
        aux_bits = n_out * act.count * cmp_bits
    elif last:
        t.add("compute", "fp_mult (output scale)", 32, n_out, ENERGY_45NM_PJ[("fp_mult", 32)])
        t.add("compute", "fp_add (output offset)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
        aux_bits = 2 * 32 * n_out
    out_bits = layer.out_dtype.bits
    _memory(t, "weights", macs * w_bits)
    _memory(t, "thresholds/scales", aux_bits)
    _memory(t, "input activations", n_in * a_bits)
    _memory(t, "output activations", n_out * (32 if act is None else out_bits))
    return _layer_record(layer.name, layer, datapath, w_bits, a_bits, out_bits, cmp_bits,
                         aux_bits, t)


def float32_layer_cost(layer: DenseLayer, last: bool) -> dict[str, Any]:
    """The same layer in float32: fp32 MACs, folded batch norm, clamp activation."""
    n_in, n_out = layer.in_features, layer.out_features
    macs = n_in * n_out
    t = _Terms()
    t.add("compute", "fp_mult", 32, macs, ENERGY_45NM_PJ[("fp_mult", 32)])
    t.add("compute", "fp_add (accumulate)", 32, macs, ENERGY_45NM_PJ[("fp_add", 32)])
    t.add("compute", "fp_mult (batch norm)", 32, n_out, ENERGY_45NM_PJ[("fp_mult", 32)])
    t.add("compute", "fp_add (batch norm)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
    if not last:
        t.add("compute", "fp_add (activation clamp)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
    aux_bits = 2 * 32 * n_out
    _memory(t, "weights", macs * 32)
    _memory(t, "batch norm", aux_bits)
    _memory(t, "input activations", n_in * 32)
    _memory(t, "output activations", n_out * 32)
    return _layer_record(layer.name, layer, "fp32-mac", 32, 32, 32, 32, aux_bits, t)


def _totals(layers: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("macs", "weight_bytes", "aux_bytes", "compute_pj", "memory_pj", "total_pj",
            "dram_weights_pj")
    tot: dict[str, Any] = {k: sum(r[k] for r in layers) for k in keys}
    # ping-pong activation buffers: the largest input + output pair is live at once
    tot["act_peak_bytes"] = max(r["act_in_bytes"] + r["act_out_bytes"] for r in layers)
    tot["param_bytes"] = tot["weight_bytes"] + tot["aux_bytes"]
    return tot


def cost_model(model: Model) -> dict[str, Any]:
    """Per-layer and total cost of the integer IR and of its float32 twin, with ratios."""
    last = len(model.layers) - 1
    q = [quantized_layer_cost(layer, i == last) for i, layer in enumerate(model.layers)]
    f = [float32_layer_cost(layer, i == last) for i, layer in enumerate(model.layers)]
    qt, ft = _totals(q), _totals(f)
    return {
        "source": ENERGY_SOURCE, "model": list(ENERGY_MODEL),
        "table_pj": [{"op": op, "bits": b, "pj": v} for (op, b), v in ENERGY_45NM_PJ.items()],
        "quantized": {"layers": q, "total": qt},
        "float32": {"layers": f, "total": ft},
        "ratio_float32_over_quantized": {
            k: ft[k] / qt[k] if qt[k] else None
            for k in ("compute_pj", "memory_pj", "total_pj", "dram_weights_pj", "param_bytes",
                      "act_peak_bytes")},
    }
