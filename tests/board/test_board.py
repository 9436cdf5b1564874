"""The board flow: the UART blocks in cocotb benches, the whole board top (UART receive ->
accelerator -> UART transmit) at the bit level against the golden model, damaged requests,
the host side over a pseudo-terminal with pyserial, programming, and (slow) bitstreams and
a design that does not fit."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import golden
from flow.backends import rtl
from flow.board import BOARDS, BoardFitError, build_bitstream, protocol_for, requests
from flow.board.bitstream import fit_message
from flow.board.host import board_run, compare, open_port, run_frames
from flow.board.program import loader_command, program
from flow.board.shell import BOARD_BLOCKS, board_blocks, clks_per_bit, hw_sources
from flow.board.sim import simulate_board
from flow.fingerprint import is_current, write_stamp
from flow.ir import Model
from flow.synthetic import random_codes, random_model
from tests.helpers.rtl import TB_DIR

ICEBREAKER, ULX3S = BOARDS["icebreaker"], BOARDS["ulx3s"]


def tiny_model(name: str = "tiny") -> Model:
    """Two layers, folded so that beats hold several codes and accumulators: 8-bit inputs,
    6 classes of 6-bit signed accumulators."""
    return random_model([16, 12, 6], ["BIPOLAR", "INT3"], ["BIPOLAR"], "UINT8",
                        [(3, 4), (2, 3)], seed=5, name=name)


def fast_baud(board: Any) -> int:
    """A baud rate the board's clock divides by 8: few clocks per bit, a short simulation."""
    return round(board.clock_mhz * 1e6 / 8)


def test_every_board_block_has_a_bench() -> None:
    assert [b for b in BOARD_BLOCKS if b != "uart_shell"
            and not (TB_DIR / f"tb_{b}.py").exists()] == []


@pytest.mark.parametrize("clks, skew", [(8, 0.0), (13, 0.03), (16, -0.03)])
def test_uart_rx(clks: int, skew: float, tmp_path: Path) -> None:
    folder = rtl.build([board_blocks()[0]], "uart_rx", {"CLKS_PER_BIT": clks})
    job = {"CLKS_PER_BIT": clks, "skew": skew, "n": 120, "seed": clks}
    rtl.run_cocotb(folder, "uart_rx", tmp_path, "tb_uart_rx", {"QFLOW_TB": json.dumps(job)})


@pytest.mark.parametrize("clks", [8, 11])
def test_uart_tx(clks: int, tmp_path: Path) -> None:
    folder = rtl.build([board_blocks()[1]], "uart_tx", {"CLKS_PER_BIT": clks})
    job = {"CLKS_PER_BIT": clks, "n": 40, "seed": clks}
    rtl.run_cocotb(folder, "uart_tx", tmp_path, "tb_uart_tx", {"QFLOW_TB": json.dumps(job)})


def test_protocol_bytes() -> None:
    """Requests: two bytes per 12-bit code, little endian; replies: 17-bit accumulators in
    three bytes each, then the class (first of equal maxima) with the damage bit."""
    m = random_model([4, 3], ["INT4"], [], "INT12", [(1, 2)], seed=1)
    p = protocol_for(m)
    assert requests(m, np.array([[-1, 2, 300, -2048]])) == [
        bytes([0xFF, 0x0F, 2, 0, 0x2C, 1, 0, 0x08])]
    assert (p.acc_bits, p.acc_bytes, p.classes) == (17, 3, 3)
    reply = p.reply(np.array([-300, 7, 7]), damaged=True)
    assert reply == bytes([0xD4, 0xFE, 0xFF, 7, 0, 0, 7, 0, 0, 0x81])
    r = p.decode(reply)
    assert r.accumulators.tolist() == [-300, 7, 7] and r.label == 1 and r.damaged


def test_clks_per_bit() -> None:
    assert clks_per_bit(12.0, 115200) == 104 and clks_per_bit(25.0, 115200) == 217
    with pytest.raises(ValueError, match="baud 3000000"):
        clks_per_bit(12.0, 3_000_000)


def check_replies(model: Model, codes: np.ndarray, replies: list[bytes],
                  damaged: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    p = protocol_for(model)
    acc = golden.run_codes(model, codes)
    for k, (r, a) in enumerate(zip(replies, acc, strict=True)):
        if k in damaged:
            assert p.decode(r).damaged, f"frame {k}: damage not flagged"
        else:
            assert r == p.reply(a), f"frame {k}: {p.decode(r)} != golden {a.tolist()}"


def test_board_sim_digits_fast(digits_default: tuple[Model, np.ndarray],
                               digits_build: Path) -> None:
    """The default model's board top on the iCEBreaker, bit level, at its clock and 115200
    baud (simulating a frame takes about a second; building the top most of the time), on a
    few test images."""
    model, codes = digits_default
    codes = codes[:3]
    check_replies(model, codes, simulate_board(model, digits_build, ICEBREAKER, codes, 115200))


def test_board_sim_damaged_requests(tmp_path: Path) -> None:
    """A stop bit read as 0 and a frame cut short are flagged in their replies, and the
    frames after them are answered correctly (the shell fills the cut frame after its
    timeout). The tiny model's replies have ties: the class is the first maximum."""
    model = tiny_model()
    model.save(tmp_path)
    codes = random_codes(model, 5)
    faults = {1: {"stop_error": 3}, 3: {"cut": 5}}
    replies = simulate_board(model, tmp_path, ULX3S, codes, fast_baud(ULX3S), faults,
                             timeout_ms=0.05)
    check_replies(model, codes, replies, damaged={1, 3})


@pytest.mark.slow
@pytest.mark.parametrize("board", [ICEBREAKER, ULX3S], ids=lambda b: b.name)
def test_board_sim_digits_real_baud(board: Any, digits_default: tuple[Model, np.ndarray],
                                    digits_build: Path) -> None:
    """The board's clock and 115200 baud (the host's bit time is not a whole number of
    clocks), more test images, on both boards."""
    model, codes = digits_default
    codes = codes[:16]
    check_replies(model, codes, simulate_board(model, digits_build, board, codes, 115200))


class FakeBoard(threading.Thread):
    """The board's side of a pseudo-terminal: answers each request as the protocol says
    for the golden model's accumulators; the frames in `damage` are answered flagged once,
    the frames in `wrong` with one accumulator off."""

    def __init__(self, model: Model, fd: int, damage: set[int], wrong: set[int]) -> None:
        super().__init__(daemon=True)
        self.model, self.fd, self.damage, self.wrong = model, fd, set(damage), wrong
        self.protocol = protocol_for(model)

    def run(self) -> None:
        p, buf, frame = self.protocol, b"", 0
        while True:
            try:
                buf += os.read(self.fd, 4096)
            except OSError:
                return
            while len(buf) >= p.request_len:
                req, buf = buf[:p.request_len], buf[p.request_len:]
                fields = np.frombuffer(req, dtype=np.uint8).astype(np.int64)
                t = self.model.input.out_dtype
                codes = np.where(fields >= 1 << (t.bits - 1), fields - (1 << t.bits), fields) \
                    if t.signed else fields
                acc = golden.run_codes(self.model, codes[None, :])[0]
                if frame in self.wrong:
                    acc = acc + np.eye(len(acc), dtype=np.int64)[0]
                os.write(self.fd, p.reply(acc, damaged=frame in self.damage))
                if frame in self.damage:
                    self.damage.discard(frame)  # the retry is answered well
                else:
                    frame += 1


def pty_board(model: Model, damage: set[int] = frozenset(),  # type: ignore[assignment]
              wrong: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    FakeBoard(model, master, damage, wrong).start()
    return os.ttyname(slave)


def test_host_run_over_pty(digits_default: tuple[Model, np.ndarray], digits_build: Path) -> None:
    """`qflow board run`'s host over pyserial on a pty: a damaged reply is retried; every
    frame agrees; accuracy is the golden model's."""
    model, codes = digits_default
    ser = open_port(pty_board(model, damage={2}), 115200, timeout=2.0)
    try:
        r = board_run(digits_build, ICEBREAKER, ser, limit=20)
    finally:
        ser.close()
    assert r["frames"] == r["agree"] == 20 and r["accuracy"] == r["golden_accuracy"]
    saved = json.loads((digits_build / "board" / "icebreaker" / "run.json").read_text())
    assert saved["agree"] == 20


def test_host_counts_disagreement() -> None:
    model = tiny_model()
    codes = random_codes(model, 6)
    ser = open_port(pty_board(model, wrong={4}), 115200, timeout=2.0)
    try:
        r = compare(model, codes, run_frames(model, ser, codes), None)
    finally:
        ser.close()
    assert (r["agree"], r["first_difference"]) == (5, 4)


def fake_bitstream(folder: Path, model: Model) -> None:
    """A board folder as build_bitstream leaves it, without running the tools."""
    folder.mkdir(parents=True)
    (folder / "board.json").write_text(json.dumps({"bitstream": "m_board.bin"}))
    write_stamp(folder, model, hw_sources())


def test_program_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, model = tmp_path / "board" / "icebreaker", tiny_model()
    with pytest.raises(RuntimeError, match="no bitstream; run `make bitstream"):
        program(folder, ICEBREAKER, model)
    fake_bitstream(folder, model)
    with pytest.raises(RuntimeError, match="built from another IR"):
        program(folder, ICEBREAKER, tiny_model("other"))
    monkeypatch.setattr("flow.board.program.find_loader", lambda: None)
    with pytest.raises(RuntimeError, match="openFPGALoader is not installed"):
        program(folder, ICEBREAKER, model)
    assert loader_command("ofl", ULX3S, Path("x.bit"), "/dev/ttyUSB0", flash=True) == [
        "ofl", "-b", "ulx3s", "-f", "-d", "/dev/ttyUSB0", "x.bit"]


def test_program_runs_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """openFPGALoader found on PATH is run with the board's options and the bitstream."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "args"
    fake = bindir / "openFPGALoader"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {record}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    folder, model = tmp_path / "board" / "icebreaker", tiny_model()
    fake_bitstream(folder, model)
    program(folder, ICEBREAKER, model)
    assert record.read_text().split() == ["-b", "ice40_generic", "-f", str(folder / "m_board.bin")]


def test_fit_message() -> None:
    util = {"ICESTORM_LC": {"used": 6021, "available": 5280},
            "ICESTORM_RAM": {"used": 3, "available": 30}}
    assert fit_message("m", ICEBREAKER, util) == (
        "m does not fit the iCEBreaker: needs 6021 ICESTORM_LC (logic cells (a LUT4 and a "
        "flip-flop each)), the iCE40 UP5K has 5280")
    assert fit_message("m", ICEBREAKER, {"ICESTORM_LC": {"used": 1, "available": 5280}}) == ""


@pytest.mark.slow
def test_bitstream_icebreaker(tmp_path: Path) -> None:
    """A small model's bitstream for the iCEBreaker: the .bin, timing against 12 MHz."""
    build = tmp_path / "build"
    tiny_model().save(build)
    r = build_bitstream(build, ICEBREAKER, 115200)
    folder = build / "board" / "icebreaker"
    bitstream = (folder / r["bitstream"]).read_bytes()
    assert len(bitstream) > 100_000 and bitstream[:4] == bytes([0xFF, 0x00, 0x00, 0xFF])
    assert r["timing_met"] and r["fmax_mhz"] > 12
    assert r["utilization"]["ICESTORM_LC"]["used"] < 5280
    assert "the board clock is met" in (folder / "timing.txt").read_text()
    assert json.loads((folder / "board.json").read_text())["lut4"] == r["lut4"] > 0
    assert is_current(folder, tiny_model(), hw_sources())


@pytest.mark.slow
def test_bitstream_does_not_fit(tmp_path: Path) -> None:
    """256 kbit of weights in block RAM: more than the UP5K's 30 x 4 kbit. The error names
    the resource, the need and the capacity, and no board folder is left."""
    build = tmp_path / "build"
    random_model([512, 512, 4], ["BIPOLAR", "BIPOLAR"], ["BIPOLAR"], "BIPOLAR",
                 [(1, 8), (1, 8)], seed=2, name="big").save(build)
    with pytest.raises(BoardFitError, match=r"big does not fit the iCEBreaker: needs \d+ "
                       r"ICESTORM_RAM \(4 kbit block RAMs\), the iCE40 UP5K has 30"):
        build_bitstream(build, ICEBREAKER, 115200)
    assert not (build / "board" / "icebreaker").exists()


def test_cli_board_commands() -> None:
    from flow.cli import parser

    a = parser().parse_args(["board", "run", "b", "--board", "ulx3s", "--port", "/dev/ttyUSB1"])
    assert (a.board_command, a.board, a.port, a.baud) == ("run", "ulx3s", "/dev/ttyUSB1", 115200)
    with pytest.raises(SystemExit):
        parser().parse_args(["board", "build", "b", "--board", "arty"])
