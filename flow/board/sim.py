"""Bit-level simulation of a model's board top (Verilator + cocotb, uart_bench.py): the
host's bytes go in on uart_rx at its baud rate, the replies come back on uart_tx, and each
is compared with the reply the protocol gives for the golden model's accumulators."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden
from flow.backends.rtl import harness
from flow.board.boards import Board
from flow.board.protocol import protocol_for, requests
from flow.board.shell import TIMEOUT_MS, clks_per_bit, write_shell
from flow.inputs import check_codes
from flow.ir import Model

log = logging.getLogger("qflow.board")

UART_BENCH = "flow.board.uart_bench"


def simulate_board(model: Model, build_dir: Path, board: Board, codes: np.ndarray,
                   baud: int, faults: dict[int, dict[str, int]] | None = None,
                   timeout_ms: float = TIMEOUT_MS) -> list[bytes]:
    """The board's reply to each frame of input codes [N, features], simulated at the bit
    level with the board's clock and `baud` (the shell's divider set for it); `faults`
    (frame -> {"stop_error": byte} or {"cut": bytes}) damages requests."""
    codes = check_codes(model, codes, "board simulation")
    p = protocol_for(model)
    work = (Path(build_dir) / "board" / f"{board.name}-sim").resolve()  # the bench's log
    work.mkdir(parents=True, exist_ok=True)
    # the board top, the job and the replies in a new folder of this run's: concurrent
    # runs never meet, and nothing left in `work` is read or written through
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        design = write_shell(model, build_dir, board, baud, Path(tmp))
        clk_ps = 2 * round(0.5e6 / board.clock_mhz)  # cocotb's clock: an even period
        timeout_cycles = round(board.clock_mhz * 1e3 * timeout_ms)
        folder = harness.build([Path(s) for s in design.sources], design.top,
                               {"CLKS_PER_BIT": clks_per_bit(board.clock_mhz, baud),
                                "TIMEOUT_CYCLES": timeout_cycles})
        bit_ps = round(1e12 / baud)
        frames = [list(r) for r in requests(model, codes)]
        # a frame, its reply, a timeout and the accelerator's latency, with room to spare
        reply_timeout = 2 * (p.request_len + p.reply_len) * 10 * bit_ps \
            + 2 * (timeout_cycles + 100_000) * clk_ps
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"clk_ps": clk_ps, "bit_ps": bit_ps, "frames": frames,
                                   "reply_len": p.reply_len, "reply_timeout_ps": reply_timeout,
                                   "faults": {str(k): v for k, v in (faults or {}).items()}}))
        t0 = time.perf_counter()
        harness.run_cocotb(folder, design.top, work, UART_BENCH, {harness.JOB_ENV: str(job)},
                           [Path(f) for f in design.mem_files])
        log.info("board sim: %d frames in %.1f s", len(frames), time.perf_counter() - t0)
        return [bytes(r) for r in json.loads(job.with_suffix(".out.json").read_text())["replies"]]


def check_board_sim(model: Model, build_dir: Path, board: Board, codes: np.ndarray,
                    baud: int) -> dict[str, Any]:
    """Simulate and compare every reply with the golden model's; the counts."""
    replies = simulate_board(model, build_dir, board, codes, baud)
    p = protocol_for(model)
    acc = golden.run_codes(model, codes)
    equal = [r == p.reply(a) for r, a in zip(replies, acc, strict=True)]
    return {"board": board.name, "baud": baud, "frames": len(replies),
            "equal": int(sum(equal)),
            "first_difference": next((i for i, e in enumerate(equal) if not e), None)}
