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
from flow.ir import (
    Activation,
    AddLayer,
    Conv2dLayer,
    DenseLayer,
    Layer,
    Model,
    Pool,
    Requant,
    op_for,
)

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
    "MACs: a dense layer's in x out; a convolution's OH x OW x C_out x kh x kw x C_in / group "
    "(every output value is a dot product over its window, the fan-in).",
    "MAC: one mult at (weight bits x input bits) plus one add at the accumulator width; "
    "with BIPOLAR or TERNARY on either side there is no multiplier: the sign picks add or "
    "subtract, one add at the accumulator width.",
    "BIPOLAR x BIPOLAR is XNOR-popcount: per output value, fan-in XNORs, each costed as a 1-bit "
    "add (an upper bound: a full-adder cell holds two XOR gates and the carry), plus a popcount "
    "adder tree over the fan-in bits (level k adds pairs of k-bit values).",
    "thresholds: one comparison (a subtraction, so an add) per threshold per output value at "
    "the accumulator (XNOR: popcount) width, stored once per channel; the last layer's "
    "accumulators become logits with one fp32 mult + add per class (the output stage's scale "
    "and offset).",
    "max pool: kh x kw - 1 comparisons per output value at the code width (an add each; on "
    "BIPOLAR bits an OR, costed as a 1-bit add); no weights.",
    "memory: every weight, threshold and activation bit moves once per inference through a "
    "32-bit port of an on-chip SRAM, one sram_read (the table's 8 KB SRAM) per started 32-bit "
    "word, writes costed as reads; 'dram_weights_pj' is the same total with the weights "
    "fetched by dram_read instead, the case when they do not fit on chip.",
    "folding (PE/SIMD) changes cycles, not the operation count, so it is not in the model.",
    "float32 twin: the same layers with an fp32 mult + fp32 add per MAC, batch norm folded to a "
    "per-channel fp32 mult + add per output value, a clamp activation on hidden layers (one "
    "comparison, costed as an fp32 add), fp32 comparisons in pools, fp32 weights and "
    "activations.",
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


def _layer_record(layer: Layer, datapath: str, macs: int, w_bits: int, a_bits: int,
                  out_bits: int, acc_bits: int, weight_count: int, aux_bits: int, t: _Terms
                  ) -> dict[str, Any]:
    weight_total = weight_count * w_bits
    memory = t.total("memory")
    return {
        "layer": layer.name, "kind": layer.kind, "in_features": layer.in_features,
        "out_features": layer.out_features, "datapath": datapath, "macs": macs,
        "weight_bits": w_bits, "act_bits": a_bits, "out_bits": out_bits, "acc_bits": acc_bits,
        "weight_bytes": weight_total / 8, "aux_bytes": aux_bits / 8,
        "act_in_bytes": layer.in_features * a_bits / 8,
        "act_out_bytes": layer.out_features * out_bits / 8,
        "compute_pj": t.total("compute"), "memory_pj": memory, "total_pj": t.total(),
        "dram_weights_pj": t.total() + _dram_weights(weight_total), "terms": t.rows,
    }


def _pool_cost(layer: Pool, fp32: bool) -> dict[str, Any]:
    """A max pool compares, an average pool adds (then shifts: free in hardware), over each
    window's taps."""
    bits = 32 if fp32 else layer.input_dtype.bits
    ops = layer.out_features * (layer.taps - 1)
    t = _Terms()
    average = layer.reduction == "sum"
    if fp32:
        t.add("compute", "fp_add (window sum)" if average else "fp_add (max compare)", 32, ops,
              ENERGY_45NM_PJ[("fp_add", 32)])
    elif average:
        t.add("compute", "int_add (window sum)", layer.acc_dtype.bits, ops,
              int_add_pj(layer.acc_dtype.bits))
    else:
        op = "or (bipolar max)" if layer.input_dtype.is_bipolar else "int_add (max compare)"
        t.add("compute", op, bits, ops, int_add_pj(bits))
    out_bits = 32 if fp32 else layer.out_dtype.bits
    _memory(t, "input activations", layer.in_features * bits)
    _memory(t, "output activations", layer.out_features * out_bits)
    kind = layer.reduction
    acc_bits = layer.acc_dtype.bits if average and not fp32 else bits
    return _layer_record(layer, f"fp32-{kind}" if fp32 else kind, 0, 0, bits, out_bits, acc_bits,
                         0, 0, t)


def _activation_terms(t: _Terms, act: Activation | None, n_out: int, channels: int,
                      cmp_bits: int) -> int:
    """An activation's operations into t; its parameters' bits."""
    if isinstance(act, Requant):  # + bias, 32x32 product, shift, + zero point, clamp
        t.add("compute", "int_add (bias, zero point)", 32, 2 * n_out, int_add_pj(32))
        t.add("compute", "int_mult (32b x 32b requantization)", 32 * 32, n_out,
              int_mult_pj(32, 32))
        # bias (half_even: int64 in the product's units), multiplier, shift
        return channels * ((64 if act.rounding == "half_even" else 32) + 32 + 8)
    if act is not None:
        t.add("compute", "int_add (threshold compare)", cmp_bits, n_out * act.count,
              int_add_pj(cmp_bits))
        return channels * act.count * cmp_bits
    return 0


def _add_cost(layer: AddLayer, fp32: bool) -> dict[str, Any]:
    """A residual join: one add per element (the inputs' power-of-two weights are shifts),
    then the activation (float32: a clamp)."""
    n = layer.out_features
    t = _Terms()
    bits = 32 if fp32 else max(t_.bits for t_ in layer.input_dtypes)
    out_bits = 32 if fp32 else layer.out_dtype.bits
    acc_bits = 32 if fp32 else layer.acc_dtype.bits
    aux_bits = 0
    if fp32:
        t.add("compute", "fp_add (residual)", 32, n, ENERGY_45NM_PJ[("fp_add", 32)])
        t.add("compute", "fp_add (activation clamp)", 32, n, ENERGY_45NM_PJ[("fp_add", 32)])
    else:
        t.add("compute", "int_add (residual)", acc_bits, n, int_add_pj(acc_bits))
        aux_bits = _activation_terms(t, layer.activation, n, layer.out_channels, acc_bits)
    _memory(t, "thresholds/scales", aux_bits)
    _memory(t, "input activations", 2 * n * bits)
    _memory(t, "output activations", n * out_bits)
    return _layer_record(layer, "fp32-add" if fp32 else "add", 0, 0, bits, out_bits, acc_bits,
                         0, aux_bits, t)


def quantized_layer_cost(layer: Layer, last: bool) -> dict[str, Any]:
    """Operation counts, bits, bytes and energy of one integer IR layer (see module doc)."""
    if isinstance(layer, AddLayer):
        return _add_cost(layer, fp32=False)
    if not layer.weighted:
        return _pool_cost(pool_layer(layer), fp32=False)
    layer = weighted_layer(layer)
    n_in, n_out, k = layer.in_features, layer.out_features, layer.fan_in
    macs = n_out * k
    channels = layer.out_channels
    n_w = channels * k
    w_t, a_t = layer.weight_dtype, layer.input_dtype
    w_bits, a_bits, acc_bits = w_t.bits, a_t.bits, layer.acc_dtype.bits
    t = _Terms()
    if layer.is_xnor:
        datapath = "xnor-popcount"
        t.add("compute", "xnor", 1, macs, int_add_pj(1))
        for adders, width in popcount_tree(k):
            t.add("compute", "int_add (popcount tree)", width, adders * n_out, int_add_pj(width))
        cmp_bits = bits_for_range(0, k)
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
    aux_bits = _activation_terms(t, act, n_out, channels, cmp_bits)
    if act is None and last:
        t.add("compute", "fp_mult (output scale)", 32, n_out, ENERGY_45NM_PJ[("fp_mult", 32)])
        t.add("compute", "fp_add (output offset)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
        aux_bits = 2 * 32 * channels
    out_bits = layer.out_dtype.bits
    _memory(t, "weights", n_w * w_bits)
    _memory(t, "thresholds/scales", aux_bits)
    _memory(t, "input activations", n_in * a_bits)
    _memory(t, "output activations", n_out * (32 if act is None else out_bits))
    return _layer_record(layer, datapath, macs, w_bits, a_bits, out_bits, cmp_bits, n_w,
                         aux_bits, t)


def float32_layer_cost(layer: Layer, last: bool) -> dict[str, Any]:
    """The same layer in float32: fp32 MACs, folded batch norm, clamp activation."""
    if isinstance(layer, AddLayer):
        return _add_cost(layer, fp32=True)
    if not layer.weighted:
        return _pool_cost(pool_layer(layer), fp32=True)
    layer = weighted_layer(layer)
    n_in, n_out, k = layer.in_features, layer.out_features, layer.fan_in
    macs = n_out * k
    n_w = layer.out_channels * k
    t = _Terms()
    t.add("compute", "fp_mult", 32, macs, ENERGY_45NM_PJ[("fp_mult", 32)])
    t.add("compute", "fp_add (accumulate)", 32, macs, ENERGY_45NM_PJ[("fp_add", 32)])
    t.add("compute", "fp_mult (batch norm)", 32, n_out, ENERGY_45NM_PJ[("fp_mult", 32)])
    t.add("compute", "fp_add (batch norm)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
    if not last:
        t.add("compute", "fp_add (activation clamp)", 32, n_out, ENERGY_45NM_PJ[("fp_add", 32)])
    aux_bits = 2 * 32 * layer.out_channels
    _memory(t, "weights", n_w * 32)
    _memory(t, "batch norm", aux_bits)
    _memory(t, "input activations", n_in * 32)
    _memory(t, "output activations", n_out * 32)
    return _layer_record(layer, "fp32-mac", macs, 32, 32, 32, 32, n_w, aux_bits, t)


def _totals(layers: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("macs", "weight_bytes", "aux_bytes", "compute_pj", "memory_pj", "total_pj",
            "dram_weights_pj")
    tot: dict[str, Any] = {k: sum(r[k] for r in layers) for k in keys}
    # ping-pong activation buffers: the largest input + output pair is live at once
    tot["act_peak_bytes"] = max(r["act_in_bytes"] + r["act_out_bytes"] for r in layers)
    tot["param_bytes"] = tot["weight_bytes"] + tot["aux_bytes"]
    return tot


def pool_layer(layer: Layer) -> Pool:
    assert isinstance(layer, Pool), layer.kind  # every unweighted kind but add is a pool
    return layer


def weighted_layer(layer: Layer) -> DenseLayer | Conv2dLayer:
    """The cost model counts dense and conv layers (pools apart); other kinds get an error
    naming the layer."""
    op_for({k.kind: k for k in (DenseLayer, Conv2dLayer)}, layer, "the cost model")
    assert isinstance(layer, DenseLayer | Conv2dLayer)
    return layer


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
