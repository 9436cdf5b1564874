"""The C toolchains, as a target record (targets.py) names them: its compiler with warnings
as errors (optional sanitizers where the target has them), its run command (the host runs
the program itself, QEMU runs it with semihosting file I/O and -icount), and what its ELF
holds (sizes, placement) as its binutils read it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from flow.backends.firmware.common import FirmwareError
from flow.backends.firmware.targets import EXE, INSTALL_HINTS, FirmwareTarget, firmware_target

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
# the names every op gives its constant arrays (weights, thresholds, biases, multipliers,
# shifts)
CONSTANT_PREFIXES = ("qflow_w", "qflow_t", "qflow_b", "qflow_m", "qflow_s")


def tool(name: str) -> str:
    """The path of a program on PATH; FirmwareError saying how to install it otherwise."""
    path = shutil.which(name)
    if path is None:
        raise FirmwareError(f"{name} not found on PATH ({INSTALL_HINTS[name]})")
    return path


def missing_tools(target: str | FirmwareTarget) -> list[str]:
    """What building, running and measuring for a target need and PATH lacks, each with its
    install command (empty when everything is there)."""
    return [f"{name} not found on PATH ({INSTALL_HINTS[name]})"
            for name in firmware_target(target).tools if shutil.which(name) is None]


def compile_program(sources: list[Path], exe: Path, target: str | FirmwareTarget,
                    flags: list[str]) -> Path:
    """C99 sources -> a program for a target (a record or its name; warnings as errors)."""
    t = firmware_target(target)
    link = t.memory.link_flags() if t.memory else ()
    cmd = [tool(t.compiler), *t.cflags, *CFLAGS, *flags, *(str(f) for f in sources), *link,
           "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise FirmwareError(f"{t.name} build failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return exe


def run_program(exe: Path, target: str | FirmwareTarget, cwd: Path, timeout: float = 900) -> str:
    """Run a program built by compile_program in folder cwd; returns its output (QEMU
    prints the program's semihosting output on stderr). FirmwareError on a non-zero exit or
    a target that cannot run programs (saying why)."""
    t = firmware_target(target)
    if t.run is None or t.unsupported:
        raise FirmwareError(f"firmware target {t.name} cannot run programs: {t.unsupported}")
    exe = Path(exe).resolve()  # a relative path would be taken from cwd, not from here
    cmd = [str(exe) if a == EXE else a for a in t.run]
    if t.run[0] != EXE:  # an emulator: from PATH, or say how to install it
        cmd[0] = tool(cmd[0])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    if r.returncode:
        raise FirmwareError(f"{exe.name} on {t.name} failed (exit {r.returncode}):\n"
                            f"{r.stdout[-4000:]}{r.stderr[-4000:]}")
    return r.stdout + r.stderr


def binutil(t: FirmwareTarget, name: str) -> str:
    """The path of a target's size, objdump or nm; FirmwareError for a target whose ELF
    is not measured."""
    if t.binutils is None:
        raise FirmwareError(f"firmware target {t.name}: its programs are not measured")
    return tool(t.binutils + name)


def elf_sizes(elf: Path, target: str | FirmwareTarget) -> dict[str, int]:
    """text / rodata / data / bss / stack bytes of a target's ELF. picolibc's linker script
    puts .rodata inside the flash's .text output section, so rodata is the sum of the data
    objects placed there (objdump flag O) and text the rest of that section."""
    t = firmware_target(target)
    size, objdump = binutil(t, "size"), binutil(t, "objdump")
    r = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True, check=True)
    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0, "stack": 0}
    groups = {"text": (".text", ".init"), "data": (".data", ".sdata", ".tdata"),
              "bss": (".bss", ".sbss", ".tbss"), "stack": (".stack",)}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[1].isdigit():
            for key, names in groups.items():
                if f[0] in names:
                    out[key] += int(f[1])
    r = subprocess.run([objdump, "-t", str(elf)], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        f = line.split()  # address, flags..., section, size, name
        if len(f) >= 5 and "O" in f[1:-3] and f[-3] in groups["text"]:
            out["rodata"] += int(f[-2], 16)
    out["text"] -= out["rodata"]
    return out


def constants_in_flash(elf: Path, target: str | FirmwareTarget) -> dict[str, Any]:
    """Where the linker put the model's constants: every constant array must lie in the
    target's flash region (read-only), none in RAM."""
    t = firmware_target(target)
    if t.memory is None:
        raise FirmwareError(f"firmware target {t.name} has no memory map to place constants in")
    nm = binutil(t, "nm")
    r = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, check=True)
    in_ram, in_flash, ram_bytes = [], 0, 0
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[3].startswith(CONSTANT_PREFIXES):
            addr, size = int(f[0], 16), int(f[1], 16)
            if t.memory.in_flash(addr):
                in_flash += size
            else:
                in_ram.append(f[3])
                ram_bytes += size
    return {"constant_bytes_in_flash": in_flash, "constant_bytes_in_ram": ram_bytes,
            "constants_in_ram": in_ram}
