"""The dense layer in RTL: one `mvau` (rtl/compute/mvau.sv) per layer, its parameters and memory
images, its streams and its pipeline latency.

The input stream carries SIMD codes of the layer's input type a beat, in/SIMD beats a frame;
the output PE codes of its output type (thresholded or requantized codes, or the signed
accumulators of a layer without activation), out/PE beats a frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.backends.requant import MULTIPLIER_BITS, hardware_requant
from flow.backends.rtl import pipeline
from flow.backends.rtl.pipeline import RequantParams
from flow.backends.rtl.stage import Params, Stage, Stream, Timing
from flow.backends.thresholds import hardware_thresholds
from flow.ir import AddLayer, DenseLayer, Requant
from flow.packing import encode, mem_image, pack_words

KINDS = (DenseLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

BLOCKS = ("mvau_xnor_dot", "mvau_mac_dot", "mvau_thresholds", "requant", "activation", "mvau")


def streams(layer: DenseLayer) -> tuple[Stream, Stream]:
    pe, simd = layer.folding.pe, layer.folding.simd
    return (Stream(simd, layer.input_dtype, layer.in_features // simd),
            Stream(pe, layer.out_dtype, layer.out_features // pe))


def weight_image(layer: DenseLayer) -> str:
    """Word nf*SF + sf holds W[nf*PE + p, sf*SIMD + s] at element p*SIMD + s."""
    pe, simd = layer.folding.pe, layer.folding.simd
    nf, sf = layer.out_features // pe, layer.in_features // simd
    wt = layer.weight_dtype
    w = encode(layer.weights, wt).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3)
    return mem_image(pack_words(w.reshape(nf * sf, pe * simd), wt.bits), pe * simd * wt.bits)


def activation_image(layer: DenseLayer | AddLayer) -> str | None:
    """The activation's memory (None without an activation). Thresholds: word nf holds
    T[nf*PE + p, j] at element p*N_THRES + j, ACC_BITS + 1 bits each. Requantization: word
    nf holds the biases, multipliers, left shifts (tflite only) and right shifts of channels
    nf*PE + p, each a group of PE fields (element p), in that order from bit 0."""
    act = layer.activation
    nf, pe = layer.out_channels // layer.folding.pe, layer.folding.pe
    if act is None:
        return None
    if isinstance(act, Requant):
        hw = hardware_requant(layer)
        left = [] if hw.half_even else [(hw.left, hw.lsh_bits)]
        groups = [(act.bias, hw.bias_bits), (act.multiplier, MULTIPLIER_BITS), *left,
                  (hw.right, hw.rsh_bits)]
        words, offset = [0] * nf, 0
        for values, bits in groups:
            fields = (values.astype(np.int64) & ((1 << bits) - 1)).reshape(nf, pe)
            words = [w | (f << offset) for w, f in zip(words, pack_words(fields, bits),
                                                       strict=True)]
            offset += pe * bits
        return mem_image(words, offset)
    t = hardware_thresholds(layer)  # popcount domain for XNOR, clipped to the reachable range
    thr_bits = layer.acc_dtype.bits + 1
    t = (t.astype(np.int64) & ((1 << thr_bits) - 1)).reshape(nf, pe * act.count)
    return mem_image(pack_words(t, thr_bits), pe * act.count * thr_bits)


def mvau_params(layer: DenseLayer, weights_file: str, activation_file: str) -> Params:
    """The `mvau` parameters of one dense layer; activation_file: its thresholds or
    requantization memory (unused without activation)."""
    pe, simd = layer.folding.pe, layer.folding.simd
    nf, sf = layer.out_features // pe, layer.in_features // simd
    xt, wt = layer.input_dtype, layer.weight_dtype
    params: Params = {
        "MW": layer.in_features, "MH": layer.out_features, "PE": pe, "SIMD": simd,
        "IN_BITS": xt.bits, "IN_SIGNED": int(xt.signed and not xt.is_bipolar),
        "IN_BIPOLAR": int(xt.is_bipolar),
        "W_BITS": wt.bits, "W_SIGNED": int(wt.signed and not wt.is_bipolar),
        "W_BIPOLAR": int(wt.is_bipolar),
        "ACC_BITS": layer.acc_dtype.bits, "N_THRES": 0, "OUT_BITS": 1, "OUT_BASE": 0,
        "OUT_STEP": 1, "WEIGHTS_FILE": weights_file, "ACTIVATION_FILE": "",
        "WEIGHTS_STYLE": pipeline.rom_style(nf * sf),
        "ACTIVATION_STYLE": pipeline.rom_style(nf),
    }
    params.update(activation_params(layer, activation_file))
    return params


def activation_params(layer: DenseLayer | AddLayer, activation_file: str) -> Params:
    """activation.sv's parameters that the layer's activation sets (none: nothing)."""
    act = layer.activation
    if isinstance(act, Requant):
        return {"OUT_BITS": act.out_dtype.bits, "ACTIVATION_FILE": activation_file,
                "REQUANT": requant_params(layer)}
    if act is None:
        return {}
    out = act.out_dtype
    # BIPOLAR codes are the count itself (-1 + 2 * count -> bit count)
    base, step = (0, 1) if out.is_bipolar else (act.base, act.step)
    return {"N_THRES": act.count, "OUT_BITS": out.bits, "OUT_BASE": base, "OUT_STEP": step,
            "ACTIVATION_FILE": activation_file}


def requant_params(layer: DenseLayer | AddLayer) -> RequantParams:
    """requant.sv's parameters of a requantized layer (its REQUANT)."""
    hw = hardware_requant(layer)
    r = hw.requant
    return RequantParams(
        half_even=hw.half_even, bias_bits=hw.bias_bits, product_bits=hw.product_bits,
        sum_bits=hw.sum_bits, lsh_max=hw.lsh_max, rsh_max=hw.rsh_max,
        rsh_min=int(hw.right.min()) if hw.half_even else 0, zero_point=r.zero_point,
        clamp_min=r.clamp_min, clamp_max=r.clamp_max)


def stage(layer: DenseLayer, name: str, image_dir: Path, weights: str | None = None) -> Stage:
    """The mvau of the layer; `weights`: a memory image in another order (the vvau's)."""
    form = "requant" if isinstance(layer.activation, Requant) else "thresholds"
    weights_file, activation_file = f"{name}_weights.mem", f"{name}_{form}.mem"
    images = {weights_file: weight_image(layer) if weights is None else weights}
    activation = activation_image(layer)
    if activation is not None:
        images[activation_file] = activation
    params = mvau_params(layer, str(image_dir / weights_file),
                         str(image_dir / activation_file))
    pe, simd = layer.folding.pe, layer.folding.simd
    inp, out = streams(layer)
    comment = (f"{layer.name}: {layer.in_features} -> {layer.out_features}, {layer.input_dtype}"
               f" x {layer.weight_dtype}, PE {pe} SIMD {simd}, {layer.cycles} cycles")
    return Stage("mvau", name, params, inp, out, comment, images,
                 {"pe": pe, "simd": simd, "cycles": layer.cycles})


def pipe_latency(layer: DenseLayer) -> int:
    """Cycles from an MVAU issuing a pass's last beat to that output beat leaving it
    (mvau.sv's PIPE, plus the output FIFO)."""
    simd = layer.folding.simd
    dot = pipeline.xnor_dot_latency(simd) if layer.is_xnor else pipeline.mac_dot_latency(simd)
    act = pipeline.activation_latency(layer.activation)
    return pipeline.ROM_LATENCY + dot + 1 + act + pipeline.FIFO_LATENCY


def output_buffer(layer: DenseLayer) -> int:
    """Output beats the MVAU holds when its output stalls before its computation stalls:
    mvau.sv's output FIFO of PIPE + 2 beats (pipe_latency + 1) less the passes in flight,
    as a credit comes back PIPE + 2 cycles after its pass issues, a pass every SF cycles at
    the most."""
    depth, sf = pipe_latency(layer) + 1, layer.in_features // layer.folding.simd
    return depth - -(-depth // sf)


def timing(layer: DenseLayer, arrivals: list[int]) -> Timing:
    """The MVAU issues one beat a cycle: a frame's first pass as its input beats arrive (after
    the previous frame's last pass), the other NF - 1 passes from its input buffer right
    after; a pass's result leaves pipe_latency cycles after its last beat."""
    inp, out = streams(layer)
    pipe = pipe_latency(layer)
    t, taken, times = -1, [], []
    for f in range(0, len(arrivals), inp.beats):
        for a in arrivals[f:f + inp.beats]:
            t = max(t + 1, a)
            taken.append(t)
        times += [t + n * inp.beats + pipe for n in range(out.beats)]
        t += (out.beats - 1) * inp.beats
    return Timing(taken, times)
