"""cocotb bench of rtl/compute/swu.sv against an independent model of the windows: the golden
model's strided view (flow.golden.conv.windows) of each random frame, padded with
PAD_VALUE, or for TERNARY_OUT the BIPOLAR codes as 2-bit -1 / +1 with 0 on padded taps.
Several frames back to back under random stalls; free-running, the first frame's beats
leave exactly when the generator's cycle model (flow.backends.rtl.window) says, and frames
follow each other at the predicted interval (no bubble between rows or frames)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_common import STALLS, job

from flow.backends.rtl.stream_bench import start, stream
from flow.backends.rtl.window import Window, feed
from flow.golden.conv import windows
from flow.packing import pack_words


class Always:
    """A consumer that takes every beat as soon as it is there."""

    def __init__(self) -> None:
        self.times: list[int] = []

    def ready(self, t: int) -> bool:
        return True

    def take(self, t: int, beat: int) -> None:
        self.times.append(t)


def framed(words: list[int], per_frame: int) -> list[tuple[int, int]]:
    return [(w, int(k % per_frame == per_frame - 1)) for k, w in enumerate(words)]


@cocotb.test()
async def swu_random_stalls(dut: Any) -> None:
    j = job()
    h, w, c, simd, bits = j["H"], j["W"], j["C"], j["SIMD"], j["ELEM_BITS"]
    win = Window((h, w, c), (j["KH"], j["KW"]), (j["SH"], j["SW"]),
                 (j["PT"], j["PL"], j["PB"], j["PR"]), simd)
    rng = np.random.default_rng(j["seed"])
    n = j["frames"]
    x = rng.integers(0, 1 << bits, size=(n, h * w * c))
    x[0], x[1] = 0, (1 << bits) - 1
    if j["TERNARY_OUT"]:  # bit 1 = +1, bit 0 = -1, a padded tap 0; out as 2-bit fields
        taps = windows(2 * x - 1, (h, w, c), win.kernel, win.stride, win.pads, 0) & 3
        out_bits = 2
    else:
        taps = windows(x, (h, w, c), win.kernel, win.stride, win.pads, j["PAD_VALUE"])
        out_bits = bits
    beats_in = framed(pack_words(x.reshape(-1, simd), bits), win.in_beats)
    per_frame = win.windows * win.window_beats
    expected = framed(pack_words(taps.reshape(-1, simd), out_bits), per_frame)
    await start(dut)
    for k, (pv, pr) in enumerate(STALLS):
        r = await stream(dut, beats_in, len(expected), pv, pr, seed=j["seed"] + k)
        bad = [i for i, (got, want) in enumerate(zip(r.beats, expected, strict=True))
               if got != want]
        assert not bad, f"stalls {pv}/{pr}: {len(bad)} beats differ, first {bad[0]}"
        if k == 0:  # from an empty unit: the cycle model's times, then the interval
            model = Always()
            feed(win, list(range(win.in_beats)), model, max(per_frame, win.in_beats))
            got = [t - r.in_cycles[0] for t in r.out_cycles[:per_frame]]
            assert got == model.times, "first frame's timing differs from the cycle model"
            ends = np.diff(r.out_cycles[per_frame - 1::per_frame])
            assert np.all(ends[1:] == max(per_frame, win.in_beats)), f"frame intervals {ends}"
