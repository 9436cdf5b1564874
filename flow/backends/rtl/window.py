"""The sliding-window unit (rtl/compute/swu.sv) as the generator sees it: its geometry for a conv or
pool layer, its parameters, and a cycle model of it feeding a consumer, from which the conv
and pool stages' expected output times come.

The cycle model mirrors swu.sv's registers: the writer takes an input beat in a cycle when
one has arrived and `filled` < rows; the reader issues a tap when `filled` covers what its
output row needs and it holds a credit; an issued tap reaches the consumer SWU_LATENCY
cycles later at the earliest (address register, memory read, read register, output FIFO);
a credit comes back the cycle after the consumer takes a beat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from flow.backends.rtl import pipeline
from flow.backends.rtl.stage import Params
from flow.ir.conv import Pads, window_output

SWU_LATENCY = 4  # swu.sv: issue -> address -> read -> read register -> FIFO, readable after
SWU_CREDITS = 5  # swu.sv's OUT_DEPTH: the issue -> pop -> credit round trip


@dataclass(frozen=True)
class Window:
    """A sliding window over an (H, W, C) channel-last frame, `simd` channels a beat."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads
    simd: int

    @property
    def out_hw(self) -> tuple[int, int]:
        (h, w, _), (kh, kw), (sh, sw), (pt, pl, pb, pr) = (self.in_shape, self.kernel,
                                                           self.stride, self.pads)
        return window_output(h, kh, sh, pt, pb), window_output(w, kw, sw, pl, pr)

    @property
    def pixel_beats(self) -> int:
        return self.in_shape[2] // self.simd

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def in_beats(self) -> int:
        return self.in_shape[0] * self.in_shape[1] * self.pixel_beats

    @property
    def window_beats(self) -> int:
        return self.taps * self.pixel_beats

    @property
    def windows(self) -> int:
        oh, ow = self.out_hw
        return oh * ow

    @property
    def rows(self) -> int:
        return pipeline.swu_rows(self.in_shape[0], self.kernel[0], self.stride[0])

    def params(self) -> Params:
        """swu.sv's geometry parameters (the unit's SIMD under the name SIMD)."""
        (h, w, c), (kh, kw), (sh, sw), (pt, pl, pb, pr) = (self.in_shape, self.kernel,
                                                           self.stride, self.pads)
        return {"H": h, "W": w, "C": c, "SIMD": self.simd, "KH": kh, "KW": kw, "SH": sh,
                "SW": sw, "PT": pt, "PL": pl, "PB": pb, "PR": pr}

    def in_frame(self, y: int) -> int:
        """A row coordinate clamped into the frame (rows of padding hold no input row)."""
        return min(max(y, 0), self.in_shape[0])

    def need(self, oy: int) -> int:
        """Complete rows (from the oldest kept) that output row oy waits for."""
        h, kh, sh, pt = self.in_shape[0], self.kernel[0], self.stride[0], self.pads[0]
        top = oy * sh - pt
        end = h if oy == self.out_hw[0] - 1 else self.in_frame(top + max(kh, sh))
        return end - self.in_frame(top)

    def freed(self, oy: int) -> int:
        """Rows released when output row oy is done."""
        h, sh, pt = self.in_shape[0], self.stride[0], self.pads[0]
        top = oy * sh - pt
        end = h if oy == self.out_hw[0] - 1 else self.in_frame(top + sh)
        return end - self.in_frame(top)


class Consumer(Protocol):
    """The block behind the swu: whether it takes a beat in cycle t, and taking it."""

    def ready(self, t: int) -> bool: ...

    def take(self, t: int, beat: int) -> None: ...


def feed(win: Window, arrivals: list[int], consumer: Consumer, cycles: int) -> list[int]:
    """Run the swu cycle model on whole frames (input beat k arriving in cycle arrivals[k],
    the unit empty at first) until the consumer, whose layer takes `cycles` per frame, has
    taken every window beat; returns the cycle the unit takes each input beat."""
    frames, rest = divmod(len(arrivals), win.in_beats)
    assert frames and not rest
    oh = win.out_hw[0]
    row_words = win.in_shape[1] * win.pixel_beats
    row_beats = win.out_hw[1] * win.window_beats
    n_in, n_out = len(arrivals), frames * win.windows * win.window_beats
    need = [win.need(oy) for oy in range(oh)]
    freed = [win.freed(oy) for oy in range(oh)]
    taken_in: list[int] = []
    col = filled = issued = taken = 0
    credits, fifo = SWU_CREDITS, deque[int]()
    # from the cycle out of reset before the first input beat (as the stream testbench and
    # a top after reset run it): windows of padding only issue before any input
    t, limit = -1, 4 * (arrivals[-1] + n_in + n_out + frames * cycles) + 100
    while taken < n_out:
        row_done, released, returned = 0, 0, 0
        if len(taken_in) < n_in and arrivals[len(taken_in)] <= t and filled < win.rows:
            taken_in.append(t)
            col += 1
            if col == row_words:
                col, row_done = 0, 1
        if issued < n_out and credits and filled >= need[issued // row_beats % oh]:
            credits -= 1
            fifo.append(t + SWU_LATENCY)
            if issued % row_beats == row_beats - 1:
                released = freed[issued // row_beats % oh]
            issued += 1
        if fifo and fifo[0] <= t and consumer.ready(t):
            fifo.popleft()
            consumer.take(t, taken)
            taken, returned = taken + 1, 1
        credits += returned
        filled += row_done - released
        t += 1
        if t > limit:
            raise RuntimeError(f"swu cycle model stuck at cycle {t}: {len(taken_in)} beats in, "
                               f"{taken} of {n_out} out")
    return taken_in
