"""The C toolchains: gcc for the host (warnings as errors, optional sanitizers) and
riscv64-unknown-elf-gcc + picolibc for RV32IMC, run by qemu-system-riscv32 with
semihosting file I/O and -icount; and what the RV32 ELF holds (sizes, placement)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from flow.backends.firmware.common import FirmwareError

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]
RV32_FLAGS = ["-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs", "--oslib=semihost"]
# QEMU virt: RAM from 0x80000000; the low 4 MB play the flash (code, rodata), 1 MB above
# them the SRAM (data, bss, stack), so a weight in RAM shows in the memory map
RV32_FLASH, RV32_FLASH_SIZE = 0x80000000, 0x400000
RV32_RAM, RV32_RAM_SIZE = 0x80400000, 0x100000
BINUTILS_HINT = "apt-get install binutils-riscv64-unknown-elf"
# every program the firmware flow runs, and how to install it
INSTALL_HINTS = {
    "gcc": "apt-get install gcc",
    "riscv64-unknown-elf-gcc": "apt-get install gcc-riscv64-unknown-elf "
                               "picolibc-riscv64-unknown-elf",
    "riscv64-unknown-elf-size": BINUTILS_HINT,
    "riscv64-unknown-elf-objdump": BINUTILS_HINT,
    "riscv64-unknown-elf-nm": BINUTILS_HINT,
    "qemu-system-riscv32": "apt-get install qemu-system-misc",
}
RV32_TOOLS = tuple(name for name in INSTALL_HINTS if name != "gcc")
# the names every op gives its constant arrays (weights, thresholds, biases, multipliers,
# shifts)
CONSTANT_PREFIXES = ("qflow_w", "qflow_t", "qflow_b", "qflow_m", "qflow_s")


def tool(name: str) -> str:
    """The path of a program on PATH; FirmwareError saying how to install it otherwise."""
    path = shutil.which(name)
    if path is None:
        raise FirmwareError(f"{name} not found on PATH ({INSTALL_HINTS[name]})")
    return path


def missing_rv32_tools() -> list[str]:
    """What the RV32IMC build and run need and PATH lacks, each with its install command
    (empty when everything is there)."""
    return [f"{name} not found on PATH ({INSTALL_HINTS[name]})" for name in RV32_TOOLS
            if shutil.which(name) is None]


def compile_program(sources: list[Path], exe: Path, target: str, flags: list[str]) -> Path:
    """C99 sources -> a program for the host or for RV32IMC under QEMU (warnings as errors)."""
    srcs = [str(f) for f in sources]
    if target == "host":
        cmd = [tool("gcc"), *CFLAGS, *flags, *srcs, "-o", str(exe)]
    elif target == "rv32":
        cc = tool("riscv64-unknown-elf-gcc")
        mem = [f"-Wl,--defsym=__flash={RV32_FLASH:#x}",
               f"-Wl,--defsym=__flash_size={RV32_FLASH_SIZE:#x}",
               f"-Wl,--defsym=__ram={RV32_RAM:#x}", f"-Wl,--defsym=__ram_size={RV32_RAM_SIZE:#x}"]
        cmd = [cc, *RV32_FLAGS, *CFLAGS, *flags, *srcs, *mem, "-o", str(exe)]
    else:
        raise FirmwareError(f"unknown firmware target {target!r} (host or rv32)")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise FirmwareError(f"{target} build failed:\n{' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return exe


def run_program(exe: Path, target: str, cwd: Path, timeout: float = 900) -> str:
    """Run a program built by compile_program in folder cwd; returns its output (QEMU
    prints the program's semihosting output on stderr). FirmwareError on a non-zero exit."""
    exe = Path(exe).resolve()  # a relative path would be taken from cwd, not from here
    if target == "host":
        cmd = [str(exe)]
    else:
        qemu = tool("qemu-system-riscv32")
        cmd = [qemu, "-machine", "virt", "-nographic", "-bios", "none", "-kernel", str(exe),
               "-semihosting-config", "enable=on,target=native", "-icount", "shift=0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    if r.returncode:
        raise FirmwareError(f"{exe.name} on {target} failed (exit {r.returncode}):\n"
                            f"{r.stdout[-4000:]}{r.stderr[-4000:]}")
    return r.stdout + r.stderr


def elf_sizes(elf: Path) -> dict[str, int]:
    """text / rodata / data / bss / stack bytes of an RV32 ELF. picolibc's linker script
    puts .rodata inside the flash's .text output section, so rodata is the sum of the data
    objects placed there (objdump flag O) and text the rest of that section."""
    size = tool("riscv64-unknown-elf-size")
    objdump = tool("riscv64-unknown-elf-objdump")
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


def constants_in_flash(elf: Path) -> dict[str, Any]:
    """Where the linker put the model's constants: every constant array must lie in the
    flash region (read-only), none in RAM."""
    nm = tool("riscv64-unknown-elf-nm")
    r = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, check=True)
    in_ram, in_flash, ram_bytes = [], 0, 0
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[3].startswith(CONSTANT_PREFIXES):
            addr, size = int(f[0], 16), int(f[1], 16)
            if RV32_FLASH <= addr < RV32_FLASH + RV32_FLASH_SIZE:
                in_flash += size
            else:
                in_ram.append(f[3])
                ram_bytes += size
    return {"constant_bytes_in_flash": in_flash, "constant_bytes_in_ram": ram_bytes,
            "constants_in_ram": in_ram}
