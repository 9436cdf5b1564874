"""`qflow board run`: the host side of the UART protocol. Sends the test split (or given
inputs) frame by frame over a serial port, checks every reply against the golden model and
reports accuracy and agreement.

One frame is outstanding at a time: the host sends a request and reads its reply. A reply
that does not come within the read timeout, or comes flagged as damaged, is retried after
the shell's resynchronization time (a cut frame is completed by the board and its reply
dropped here)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import numpy as np

from flow import golden
from flow.atomic import write_json
from flow.board.boards import Board
from flow.board.protocol import Reply, protocol_for, requests
from flow.board.shell import TIMEOUT_MS
from flow.inputs import check_codes, command_codes, test_split
from flow.ir import Model, load

log = logging.getLogger("qflow.board")

RETRIES = 3


class SerialPort(TypingProtocol):
    """What the host needs of a pyserial Serial (or a stand-in)."""

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes: ...

    def reset_input_buffer(self) -> None: ...


def open_port(port: str, baud: int, timeout: float) -> Any:
    try:
        import serial  # pyserial
    except ImportError as e:
        raise RuntimeError("qflow board run needs pyserial: pip install pyserial") from e
    try:
        return serial.Serial(port, baud, timeout=timeout)
    except serial.SerialException as e:
        raise RuntimeError(f"{port}: cannot open the serial port ({e})") from e


def exchange(ser: SerialPort, request: bytes, reply_len: int, decode: Any) -> Reply:
    """One frame: send it, read its reply; retried when the reply is short or damaged."""
    for _ in range(RETRIES):
        ser.write(request)
        data = ser.read(reply_len)
        if len(data) == reply_len:
            reply: Reply = decode(data)
            if not reply.damaged:
                return reply
        # let the shell fill and answer a cut frame, then drop what is in flight
        time.sleep(2 * TIMEOUT_MS / 1000)
        ser.reset_input_buffer()
        log.warning("board run: frame retried (%s)", "damaged" if len(data) == reply_len
                    else f"{len(data)} of {reply_len} reply bytes")
    raise RuntimeError(f"no good reply after {RETRIES} attempts; is the board programmed "
                       "with this model's bitstream and the baud rate the same?")


def run_frames(model: Model, ser: SerialPort, codes: np.ndarray) -> list[Reply]:
    p = protocol_for(model)
    return [exchange(ser, r, p.reply_len, p.decode) for r in requests(model, codes)]


def compare(model: Model, codes: np.ndarray, replies: list[Reply],
            labels: np.ndarray | None) -> dict[str, Any]:
    """Agreement with the golden model (accumulators and class, frame by frame) and accuracy."""
    acc = golden.run_codes(model, codes)
    want = np.argmax(acc, axis=1)
    got_acc = np.stack([r.accumulators for r in replies])
    got = np.array([r.label for r in replies])
    same = np.all(got_acc == acc, axis=1) & (got == want)
    out: dict[str, Any] = {"frames": len(replies), "agree": int(same.sum()),
                           "agreement": float(same.mean()),
                           "first_difference": int(np.argmin(same)) if not same.all() else None}
    if labels is not None:
        out["accuracy"] = float(np.mean(got == labels))
        out["golden_accuracy"] = float(np.mean(want == labels))
    return out


def board_run(build_dir: Path, board: Board, ser: SerialPort, inputs: str | None = None,
              limit: int | None = None) -> dict[str, Any]:
    """Run the frames through the board on `ser`, write build_dir/board/<board>/run.json."""
    model = load(build_dir)
    codes = check_codes(model, command_codes(model, inputs, limit), "board run")
    labels = None if inputs else test_split(model)[1][:limit]
    t0 = time.perf_counter()
    replies = run_frames(model, ser, codes)
    r = {"board": board.name, **compare(model, codes, replies, labels),
         "seconds": round(time.perf_counter() - t0, 2)}
    write_json(Path(build_dir) / "board" / board.name / "run.json", r)
    return r


def summary_line(r: dict[str, Any]) -> str:
    line = (f"board run ({r['board']}): {r['frames']} frames, {r['agree']}/{r['frames']} "
            f"agree with the golden model")
    if "accuracy" in r:
        line += f"; accuracy {r['accuracy']:.4f} (golden {r['golden_accuracy']:.4f})"
    return line
