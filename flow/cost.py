"""Cost model of the integer IR beside its float32 twin: MACs, bits, memory and energy per
inference at 45 nm. Reads the IR only (no torch), so that every stage after export can use it.

Operation costs are Horowitz's 45 nm table (ENERGY_45NM_PJ, the one place the numbers live);
everything else is a formula over it, stated in ENERGY_MODEL (which the report prints beside
the figures).
"""

from __future__ import annotations

import math
from typing import Any

from flow.datatypes import bits_for_range
from flow.ir import DenseLayer, Layer, Model, op_for

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


def dense_layer(layer: Layer) -> DenseLayer:
    """The cost model counts dense layers; other kinds get an error naming the layer."""
    op_for({DenseLayer.kind: DenseLayer}, layer, "the cost model")
    assert isinstance(layer, DenseLayer)
    return layer


def cost_model(model: Model) -> dict[str, Any]:
    """Per-layer and total cost of the integer IR and of its float32 twin, with ratios."""
    last = len(model.layers) - 1
    layers = [dense_layer(layer) for layer in model.layers]
    q = [quantized_layer_cost(layer, i == last) for i, layer in enumerate(layers)]
    f = [float32_layer_cost(layer, i == last) for i, layer in enumerate(layers)]
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
