"""Dense layers in HLS: one `qflow::mvau` (hls/qflow_mvau.hpp) per layer.

Its parameter header holds the weights packed per PE and SIMD and the activation
(thresholds, or requantization parameters (hls/qflow_requant.hpp), per PE and output fold;
or the accumulator itself for the last layer), as function-local statics of the layer's
function in the top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flow.backends.hls.cpp import MAX_BITS, ApWord, c_array, cpp_type, stream_word
from flow.backends.requant import HardwareRequant, hardware_requant
from flow.backends.thresholds import accumulator_range, hardware_thresholds
from flow.datatypes import bits_for_range
from flow.ir import DenseLayer, Layer, Requant
from flow.packing import encode, hex_words

KINDS = (DenseLayer,)  # the IR kinds it handles (flow.ir.kind_registry)


@dataclass
class DenseStage:
    """One MVAU as the templates see it: the datapath's accumulator and its activation."""

    layer: DenseLayer
    index: int
    acc_bits: int
    # qflow::thresholds<...>, qflow::requant<...>, qflow::requant_half_even<...> or
    # qflow::accumulator_out<...>
    act_type: str
    out_type: str  # C++ datatype of the output fields
    out_bits: int
    thresholds: np.ndarray | None  # [out, count] in the accumulator's domain, clipped
    requant: HardwareRequant | None = None

    @property
    def name(self) -> str:
        return f"layer{self.index}"

    @property
    def label(self) -> str:
        return layer_label(self.layer, self.index)

    @property
    def datapath(self) -> str:
        if self.layer.is_xnor:
            return "xnor-popcount"
        if self.layer.weight_dtype.is_bipolar or self.layer.input_dtype.is_bipolar:
            return "add-sub"
        return "mac"

    @property
    def in_type(self) -> str:
        return cpp_type(self.layer.input_dtype)

    @property
    def in_elems(self) -> int:
        return self.layer.folding.simd

    @property
    def in_features(self) -> int:
        return self.layer.in_features

    @property
    def out_elems(self) -> int:
        return self.layer.folding.pe

    @property
    def out_features(self) -> int:
        return self.layer.out_features

    @property
    def params_file(self) -> str:
        return f"{self.name}_params.hpp"

    def files(self) -> dict[str, str]:
        return {self.params_file: params_header(self)}

    def partitions(self) -> str:
        """The pragmas that spread the parameters over PEs (and thresholds) for II = 1."""
        return "\n".join([f"  QFLOW_HLS(ARRAY_PARTITION variable={self.name}_weights complete "
                          "dim=1)", *self.activation_partitions()])

    def activation_partitions(self) -> list[str]:
        """The pragmas that spread the activation's parameters over PEs."""
        lines = []
        if self.thresholds is not None:
            lines += [f"  QFLOW_HLS(ARRAY_PARTITION variable={self.name}_act.t complete "
                      f"dim={d})" for d in (1, 3)]
        lines += [f"  QFLOW_HLS(ARRAY_PARTITION variable={self.name}_act.{a} complete dim=1)"
                  for a in self.requant_arrays()]
        return lines

    def requant_arrays(self) -> dict[str, np.ndarray]:
        """The requantization's per-channel arrays, by member name (none without one)."""
        hw = self.requant
        if hw is None:
            return {}
        r = hw.requant
        if hw.half_even:
            return {"bias": r.bias, "multiplier": r.multiplier, "rsh": hw.right}
        return {"bias": r.bias, "multiplier": r.multiplier, "lsh": hw.left, "rsh": hw.right}

    def function(self) -> str:
        layer, f = self.layer, self.layer.folding
        return f"""// {layer.name}: {layer.cycles} cycles per vector ({self.datapath})
static void {self.name}(hls::stream<{stream_word(f.simd, self.in_type)}>& in,
                   hls::stream<{stream_word(f.pe, self.out_type)}>& out) {{
#include "{self.params_file}"
{self.partitions()}
  qflow::mvau<{layer.in_features}, {layer.out_features}, {f.simd}, {f.pe}, \
{cpp_type(layer.weight_dtype)}, {self.in_type}, {self.acc_bits}, {self.act_type}>(
      in, out, {self.name}_weights, {self.name}_act);
}}
"""

    def words(self) -> list[ApWord]:
        layer, f = self.layer, self.layer.folding
        return [
            ApWord(f"input stream word (SIMD {f.simd} x {layer.input_dtype})",
                   f.simd * layer.input_dtype.bits),
            ApWord(f"weight word {self.name}_weights (SIMD {f.simd} x {layer.weight_dtype})",
                   f.simd * layer.weight_dtype.bits, self.params_file),
            ApWord(f"output stream word (PE {f.pe} x {layer.out_dtype})", f.pe * self.out_bits),
        ]

    def report(self) -> dict[str, Any]:
        f = self.layer.folding
        return {"name": self.layer.name, "pe": f.pe, "simd": f.simd, "cycles": self.layer.cycles,
                "datapath": self.datapath, "acc_bits": self.acc_bits}


def layer_label(layer: Layer, index: int) -> str:
    return f"layer {index} ({layer.name}, from {layer.source})"


def stage(layer: DenseLayer, index: int) -> DenseStage:
    """The accumulator width and activation of one layer; thresholds are clipped to the
    accumulator's reachable range, so their width never exceeds the accumulator's by more
    than a bit."""
    at = f"HLS: {layer_label(layer, index)}"
    for what, operand in (("input", layer.input_dtype), ("weight", layer.weight_dtype)):
        if operand.bits > MAX_BITS:
            raise ValueError(f"{at}: {what} type {operand} is wider than {MAX_BITS} bits")
    lo, hi = accumulator_range(layer)
    acc_bits = bits_for_range(min(lo, -1), hi)
    if acc_bits > MAX_BITS or layer.acc_dtype.bits > MAX_BITS:
        raise ValueError(f"{at}: accumulator of {layer.acc_dtype.bits} bits; the HLS templates "
                         f"support at most {MAX_BITS}")
    act = layer.activation
    # an XNOR layer's popcount back to the sum
    mul, add = (2, -layer.in_features) if layer.is_xnor else (1, 0)
    if act is None:
        bits = layer.acc_dtype.bits
        return DenseStage(layer, index, acc_bits, f"qflow::accumulator_out<{bits}, {mul}, {add}>",
                          f"qflow::int_t<{bits}>", bits, None)
    if act.out_dtype.bits > MAX_BITS:
        raise ValueError(f"{at}: output type {act.out_dtype} is wider than {MAX_BITS} bits")
    nf = layer.out_features // layer.folding.pe
    if isinstance(act, Requant):
        hw = hardware_requant(layer)
        out = (f"{hw.rsh_max}, {cpp_type(act.out_dtype)}, {act.zero_point}, {act.clamp_min}, "
               f"{act.clamp_max}, {mul}, {add}>")
        if hw.half_even:
            sum_bits = bits_for_range(min(layer.acc_min, -1), max(layer.acc_max, 0))
            act_type = (f"qflow::requant_half_even<{layer.folding.pe}, {nf}, {sum_bits}, "
                        f"{hw.bias_bits}, {hw.product_bits}, {out}")
        else:
            act_type = (f"qflow::requant<{layer.folding.pe}, {nf}, {hw.bias_bits}, "
                        f"{hw.sum_bits}, {hw.lsh_max}, {out}")
        return DenseStage(layer, index, acc_bits, act_type, cpp_type(act.out_dtype),
                          act.out_dtype.bits, None, hw)
    t = hardware_thresholds(layer)
    t_bits = bits_for_range(min(int(t.min()), -1), int(t.max()))
    act_type = (f"qflow::thresholds<{layer.folding.pe}, {nf}, {act.count}, {t_bits}, "
                f"{cpp_type(act.out_dtype)}, {act.base}, {act.step}>")
    return DenseStage(layer, index, acc_bits, act_type, cpp_type(act.out_dtype),
                      act.out_dtype.bits, t)


def params_header(s: DenseStage) -> str:
    """Weights [PE][tiles] of SIMD packed fields and the activation, as function-local
    statics: included inside the layer's function so its pragmas can partition them."""
    layer, f = s.layer, s.layer.folding
    nf, sf = layer.out_features // f.pe, layer.in_features // f.simd
    wt = layer.weight_dtype
    wbits = f.simd * wt.bits
    # W[nf * PE + pe, sf * SIMD + s] -> [pe, nf * SF + sf, s]
    w = layer.weights.reshape(nf, f.pe, sf, f.simd).transpose(1, 0, 2, 3)
    words = hex_words(encode(w.reshape(f.pe, nf * sf, f.simd), wt), wt.bits)
    # an integer literal where it fits (qflow::table_word_t: a plain integer in C simulation
    # on Xilinx's types); Vitis' string constructor makes csim compile slowly
    rows = [[f"{h}ULL" if wbits <= 64 else f'ap_uint<{wbits}>("{h}", 16)'
             for h in row] for row in words]
    text = [
        f"// {layer.name} (from {layer.source}): {layer.in_features} -> {layer.out_features}, "
        f"{layer.input_dtype} x {wt} weights, PE {f.pe}, SIMD {f.simd}.",
        "// Generated by qflow from the IR; included inside the layer's function.",
        f"static const qflow::table_word_t<{wbits}> {s.name}_weights[{f.pe}][{nf * sf}] =",
        c_array(rows) + ";",
    ]
    return "\n".join(text) + "\n" + activation_params(s)


def activation_params(s: DenseStage) -> str:
    """The activation `<name>_act` of struct `s.act_type` as a function-local static:
    thresholds [PE][NF][count], the requantization's arrays [PE][NF] each, or empty."""
    layer, f = s.layer, s.layer.folding
    nf = layer.out_features // f.pe
    text = []
    if s.thresholds is not None:
        # T[nf * PE + pe, j] -> [pe][nf][j]
        t = s.thresholds.reshape(nf, f.pe, -1).transpose(1, 0, 2)
        planes = [c_array([[f"{int(v)}LL" for v in row] for row in plane]) for plane in t]
        text += [f"static const {s.act_type} {s.name}_act = {{{{", ",\n".join(planes), "}};"]
    elif s.requant is not None:
        # the per-channel arrays in the struct's member order, channel nf * PE + pe ->
        # [pe][nf] each
        arrays = [c_array([[f"{int(v)}LL" for v in row] for row in a.reshape(nf, f.pe).T])
                  for a in s.requant_arrays().values()]
        text += [f"static const {s.act_type} {s.name}_act = {{", ",\n".join(arrays), "};"]
    else:
        text.append(f"static const {s.act_type} {s.name}_act = {{}};")
    return "\n".join(text) + "\n"
