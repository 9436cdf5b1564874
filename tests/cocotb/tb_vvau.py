"""cocotb bench of rtl/compute/vvau.sv against the golden model of one depthwise convolution
(golden.layer): the layer's windows (golden.conv.windows, BIPOLAR taps as 2-bit codes as
the swu sends them) in (tap, channel group) order, PE channels a beat, under random stalls;
free-running, a frame every taps x C/PE cycles of its windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from tb_common import STALLS, job

from flow import golden
from flow.backends.rtl import conv
from flow.backends.rtl.stream_bench import start, stream
from flow.golden.conv import windows
from flow.ir import load
from flow.packing import encode, pack_words
from flow.synthetic import random_codes


@cocotb.test()
async def vvau_random_stalls(dut: Any) -> None:
    j = job()
    model = load(Path(j["ir"]))
    layer = model.layers[0]
    pe, c = layer.folding.pe, layer.out_channels
    x = random_codes(model, j["frames"], seed=j["seed"])
    tap_t = conv.dense_view(layer).input_dtype  # INT2 for BIPOLAR taps (0: padded)
    win = windows(x, layer.in_shape, layer.kernel, layer.stride, layer.pads,
                  0 if conv.ternary(layer) else layer.pad_value)
    taps = win.reshape(-1, layer.window, c // pe, pe)  # [window, tap, group, PE]
    per_frame = len(taps) // j["frames"] * layer.window * (c // pe)
    beats = [(w, int(k % per_frame == per_frame - 1)) for k, w in enumerate(
        pack_words(encode(taps, tap_t).reshape(-1, pe), tap_t.bits))]
    y = golden.layer(layer, x)
    out_t = layer.out_dtype
    out_beats = layer.out_features // pe
    words = pack_words(encode(y, out_t).reshape(-1, pe), out_t.bits)
    expected = [(w, int(k % out_beats == out_beats - 1)) for k, w in enumerate(words)]
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats, len(expected), pv, pr, seed=j["seed"] + k)
        bad = [i for i, (g, w) in enumerate(zip(r.beats, expected, strict=True)) if g != w]
        assert not bad, f"stalls {pv}/{pr}: {len(bad)} beats differ, first {bad[0]}"
        if k == 0:
            ends = np.diff(r.out_cycles[out_beats - 1::out_beats])
            assert np.all(ends == per_frame), f"frame intervals {ends}, not {per_frame}"
