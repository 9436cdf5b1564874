"""cocotb bench of rtl/pool/pool_reduce.sv against a Python model: windows of TAPS beats of
each channel group in, the per-channel max of each window out (signed or unsigned
fields), tlast passed with a window's last tap; random stalls."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_common import STALLS, job

from flow.backends.rtl.stream_bench import start, stream
from flow.packing import pack_words, unpack_words


@cocotb.test()
async def reduce_random_stalls(dut: Any) -> None:
    j = job()
    c, pe, taps, bits, signed = j["C"], j["PE"], j["TAPS"], j["ELEM_BITS"], j["SIGNED"]
    rng = np.random.default_rng(j["seed"])
    n = j["windows"]
    x = rng.integers(0, 1 << bits, size=(n, taps, c))
    x[0], x[1] = 0, (1 << bits) - 1
    values = unpack_words(pack_words(x.reshape(-1, c), bits), c, bits, bool(signed))
    best = values.reshape(n, taps, c).max(axis=1) & ((1 << bits) - 1)
    per_window = taps * (c // pe)
    # a "frame" of three windows: tlast on every third window's last beat
    beats_in = [(wd, int(k % (3 * per_window) == 3 * per_window - 1))
                for k, wd in enumerate(pack_words(x.reshape(-1, pe), bits))]
    out = pack_words(best.reshape(-1, pe), bits)
    per_out = c // pe
    expected = [(wd, int(k % (3 * per_out) == 3 * per_out - 1)) for k, wd in enumerate(out)]
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats_in, len(expected), pv, pr, seed=j["seed"] + k)
        assert r.beats == expected, f"stalls {pv}/{pr}: beats differ"
        if k == 0:  # one input beat a cycle
            assert r.in_cycles[-1] - r.in_cycles[0] == len(beats_in) - 1
