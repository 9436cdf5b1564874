"""cocotb bench of rtl/compute/mvau.sv against the golden model of one dense layer (golden.layer):
random vectors plus all-min / all-max ones, random stalls, and with no stall exactly
(out / PE) x (in / SIMD) cycles per vector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from tb_common import STALLS, job

from flow import golden
from flow.backends.rtl.stream_bench import start, stream
from flow.ir import load
from flow.packing import encode, pack_words
from flow.synthetic import random_codes


@cocotb.test()
async def mvau_random_stalls(dut: Any) -> None:
    j = job()
    model = load(Path(j["ir"]))
    layer = model.layers[0]
    pe, simd = layer.folding.pe, layer.folding.simd
    nf, sf = layer.out_features // pe, layer.in_features // simd
    x = random_codes(model, j["vectors"], seed=j["seed"])
    y = golden.layer(layer, x)
    out_t = layer.out_dtype
    beats = [(w, int(k % sf == sf - 1)) for k, w in enumerate(
        pack_words(encode(x, layer.input_dtype).reshape(-1, simd), layer.input_dtype.bits))]
    words = pack_words(encode(y, out_t).reshape(-1, pe), out_t.bits)
    expected = [(w, int(k % nf == nf - 1)) for k, w in enumerate(words)]
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats, len(expected), pv, pr, seed=j["seed"] + k)
        bad = [i for i, (got, want) in enumerate(zip(r.beats, expected, strict=True)) if got != want]
        assert not bad, f"stalls {pv}/{pr}: {len(bad)} beats differ, first {bad[0]}"
        if pv == pr == 1.0:
            ends = np.asarray(r.out_cycles[nf - 1::nf])
            assert np.all(np.diff(ends) == nf * sf), f"cycles per vector {np.diff(ends)}"
