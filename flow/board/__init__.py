"""Bitstreams for open FPGA boards: a UART shell around the generated accelerator.

`qflow board build DIR --board B` writes DIR/board/B/: the board top (rtl/uart/uart_shell.sv
around DIR/rtl/'s accelerator), the board's pin and clock constraints, the bitstream
(Yosys, nextpnr, icepack / ecppack from the YoWASP packages), board.json and timing.txt
(Fmax against the board clock, utilisation). `qflow board program` loads it with
openFPGALoader; `qflow board run` sends frames over the serial port and checks every reply
against the golden model; `qflow board sim` simulates the board top at the bit level
(Verilator + cocotb) and checks it the same way.

Modules: boards (the boards: pins, clock, device), protocol (the UART protocol's bytes),
shell (the board top's generator), bitstream, program, host (`board run`), sim and
uart_bench (the bit-level simulation and its cocotb side).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from flow.argtypes import positive_int
from flow.board.bitstream import BoardFitError, board_dir, build_bitstream, timing_text
from flow.board.boards import BOARDS, Board, board
from flow.board.protocol import Protocol, Reply, protocol_for, requests
from flow.board.shell import DEFAULT_BAUD, board_top_name, write_shell

__all__ = [
    "BOARDS", "Board", "BoardFitError", "DEFAULT_BAUD", "Protocol", "Reply", "board",
    "board_dir", "board_top_name", "build_bitstream", "protocol_for", "register_cli",
    "requests", "timing_text", "write_shell",
]

log = logging.getLogger("qflow.board")


def cmd_build(a: argparse.Namespace) -> None:
    b = board(a.board)
    r = build_bitstream(Path(a.build_dir), b, a.baud, a.timeout or None)
    print(timing_text(r), end="")
    print(f"-> {board_dir(Path(a.build_dir), b) / r['bitstream']}")
    if not r["timing_met"]:
        raise RuntimeError(f"{b.title}: Fmax {r['fmax_mhz']} MHz is below the board's "
                           f"{b.clock_mhz:g} MHz clock; the bitstream may not work")


def cmd_program(a: argparse.Namespace) -> None:
    from flow.board.program import program
    from flow.ir import load

    b = board(a.board)
    program(board_dir(Path(a.build_dir), b), b, load(Path(a.build_dir)), a.port or None,
            a.flash)


def cmd_run(a: argparse.Namespace) -> None:
    from flow.board.host import board_run, open_port, summary_line
    from flow.ir import load

    b = board(a.board)
    p = protocol_for(load(Path(a.build_dir)))
    # a request and its reply on the line, and the accelerator, with room to spare
    timeout = 2 * (p.request_len + p.reply_len) * 10 / a.baud + 0.5
    ser = open_port(a.port, a.baud, timeout)
    try:
        r = board_run(Path(a.build_dir), b, ser, a.inputs, a.limit)
    finally:
        ser.close()
    print(summary_line(r))
    if r["agree"] != r["frames"]:
        raise SystemExit(1)


def cmd_sim(a: argparse.Namespace) -> None:
    from flow.board.sim import check_board_sim
    from flow.inputs import command_codes
    from flow.ir import load

    b = board(a.board)
    model = load(Path(a.build_dir))
    codes = command_codes(model, a.inputs, a.limit)
    r = check_board_sim(model, Path(a.build_dir), b, codes, a.baud)
    print(f"board sim ({b.name}, {a.baud} baud, bit level): {r['equal']}/{r['frames']} "
          "replies equal the golden model's")
    if r["equal"] != r["frames"]:
        raise SystemExit(1)


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("board", help="bitstream for an open FPGA board (UART shell), "
                                     "programming, running and simulating it")
    bsub = s.add_subparsers(dest="board_command", required=True)

    def common(name: str, help_text: str) -> argparse.ArgumentParser:
        p = bsub.add_parser(name, help=help_text)
        p.add_argument("build_dir")
        p.add_argument("--board", required=True, choices=list(BOARDS))
        return p

    p = common("build", "Yosys + nextpnr + icepack/ecppack: DIR/board/BOARD/")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds per tool run, 0 for none")
    p.set_defaults(func=cmd_build)

    p = common("program", "load the bitstream with openFPGALoader")
    p.add_argument("--port", help="the board's FTDI device (/dev/ttyUSBn), if several")
    p.add_argument("--flash", action="store_true", help="write the SPI flash (ULX3S)")
    p.set_defaults(func=cmd_program)

    p = common("run", "send frames over the serial port, check replies against golden")
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("--inputs", help="float inputs (.npy) instead of the test split")
    p.add_argument("--limit", type=positive_int)
    p.set_defaults(func=cmd_run)

    p = common("sim", "bit-level simulation of the board top (Verilator + cocotb) vs golden")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("--inputs", help="float inputs (.npy) instead of the test split")
    p.add_argument("--limit", type=positive_int, default=8)
    p.set_defaults(func=cmd_sim)
