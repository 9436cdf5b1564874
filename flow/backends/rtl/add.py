"""The residual join in RTL: one `add_layer` (rtl/compute/add_layer.sv) per add layer,
taking a beat from both input streams together, adding them as WA * a + WB * b and
applying the activation (activation.sv: thresholds or requantization) with the fold's
parameters from its ROM, the same memory image a dense layer's activation has.

Streams: PE codes a beat on each input and on the output, channel-last; H * W * C / PE
beats a frame each.
"""

from __future__ import annotations

from pathlib import Path

from flow.backends.rtl import pipeline
from flow.backends.rtl.dense import activation_image, activation_params
from flow.backends.rtl.stage import Params, Stage, Stream, Timing
from flow.ir import AddLayer, Requant

KINDS = (AddLayer,)  # the IR kinds it handles (flow.ir.kind_registry)

BLOCKS = ("mvau_thresholds", "requant", "activation", "add_layer", "axis_fork")  # a join comes
# with the fork of its skip path


def input_streams(layer: AddLayer) -> tuple[Stream, Stream]:
    """Both inputs' streams, in the order the layer reads them (s0, s1)."""
    pe = layer.folding.pe
    return (Stream(pe, layer.input_dtype, layer.in_features // pe),
            Stream(pe, layer.other_dtype, layer.in_features // pe))


def streams(layer: AddLayer) -> tuple[Stream, Stream]:
    pe = layer.folding.pe
    return input_streams(layer)[0], Stream(pe, layer.out_dtype, layer.out_features // pe)


def stage(layer: AddLayer, name: str, image_dir: Path) -> Stage:
    form = "requant" if isinstance(layer.activation, Requant) else "thresholds"
    activation_file = f"{name}_{form}.mem"
    image = activation_image(layer)
    images = {activation_file: image} if image is not None else {}
    a, b = layer.input_dtypes
    h, w, c = layer.in_shape
    pe = layer.folding.pe
    params: Params = {
        "CHANNELS": c, "PE": pe, "PIXELS": h * w,
        "A_BITS": a.bits, "A_SIGNED": int(a.signed), "B_BITS": b.bits, "B_SIGNED": int(b.signed),
        "WA": layer.input_weights[0], "WB": layer.input_weights[1],
        "ACC_BITS": layer.acc_dtype.bits, "N_THRES": 0, "OUT_BITS": 1, "OUT_BASE": 0,
        "OUT_STEP": 1, "ACTIVATION_FILE": "", "ACTIVATION_STYLE": pipeline.rom_style(c // pe),
        **activation_params(layer, str(image_dir / activation_file)),
    }
    inp, out = streams(layer)
    comment = (f"{layer.name}: {layer.input_weights[0]} * {a} + {layer.input_weights[1]} * "
               f"{b} -> {layer.out_dtype}, {layer.in_shape}, PE {pe}, {layer.cycles} cycles")
    return Stage("add_layer", name, params, inp, out, comment, images,
                 {"pe": pe, "simd": 1, "cycles": layer.cycles})


def pipe_latency(layer: AddLayer) -> int:
    """Cycles from a beat's issue to its result leaving: add_layer.sv's PIPE (the ROM
    read beside the sum, the activation), then its output FIFO."""
    return pipeline.ROM_LATENCY + pipeline.activation_latency(layer.activation) + \
        pipeline.FIFO_LATENCY


def output_buffer(layer: AddLayer) -> int:
    """None counted: its output FIFO of PIPE + 2 beats is all credits in flight, a beat
    issued every cycle."""
    return 0


def timing(layer: AddLayer, arrivals: list[int], others: list[int] | None = None) -> Timing:
    """A beat issues once both inputs hold it, one a cycle; its result leaves pipe_latency
    cycles later. `others`: the second input's arrivals (the first's when None)."""
    pipe = pipe_latency(layer)
    t, taken = -1, []
    for a, b in zip(arrivals, arrivals if others is None else others, strict=True):
        t = max(t + 1, a, b)
        taken.append(t)
    return Timing(taken, [c + pipe for c in taken])
