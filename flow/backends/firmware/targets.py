"""Firmware targets: one record each of what differs between the machines the firmware is
built for (compiler and flags, memory map, how a program runs, the binutils that measure
its ELF, whether instructions are counted, the chip it stands for). Adding a target is
adding a record to TARGETS; per-architecture kernels would go in firmware/<arch>/ beside
the portable ones in firmware/."""

from __future__ import annotations

from dataclasses import dataclass

from flow.backends.firmware.common import KB, FirmwareError

BINUTILS_HINT = "apt-get install binutils-riscv64-unknown-elf"
XTENSA_BINUTILS_HINT = "apt-get install binutils-xtensa-lx106"
# every program a target names, and how to install it
INSTALL_HINTS = {
    "gcc": "apt-get install gcc",
    "riscv64-unknown-elf-gcc": "apt-get install gcc-riscv64-unknown-elf "
                               "picolibc-riscv64-unknown-elf",
    "riscv64-unknown-elf-size": BINUTILS_HINT,
    "riscv64-unknown-elf-objdump": BINUTILS_HINT,
    "riscv64-unknown-elf-nm": BINUTILS_HINT,
    "qemu-system-riscv32": "apt-get install qemu-system-misc",
    "xtensa-lx106-elf-gcc": "apt-get install gcc-xtensa-lx106",
    "xtensa-lx106-elf-size": XTENSA_BINUTILS_HINT,
    "xtensa-lx106-elf-objdump": XTENSA_BINUTILS_HINT,
    "xtensa-lx106-elf-nm": XTENSA_BINUTILS_HINT,
    "qemu-system-xtensa": "apt-get install qemu-system-misc",
}
EXE = "{exe}"  # stands for the program's path in a run command
# the ELF tools a target with binutils uses, by suffix after its prefix
BINUTILS = ("size", "objdump", "nm")


@dataclass(frozen=True)
class MemoryMap:
    """Where picolibc's linker script puts code and constants (flash) and data, bss and
    stack (RAM), so that a constant placed in RAM shows in the ELF's addresses."""

    flash: int
    flash_size: int
    ram: int
    ram_size: int

    def link_flags(self) -> tuple[str, ...]:
        return (f"-Wl,--defsym=__flash={self.flash:#x}",
                f"-Wl,--defsym=__flash_size={self.flash_size:#x}",
                f"-Wl,--defsym=__ram={self.ram:#x}", f"-Wl,--defsym=__ram_size={self.ram_size:#x}")

    def in_flash(self, address: int) -> bool:
        return self.flash <= address < self.flash + self.flash_size


@dataclass(frozen=True)
class FirmwareTarget:
    """A machine the firmware is built for and, where it can be, run on."""

    name: str
    isa: str  # the instruction set, as messages name it
    compiler: str  # a program on PATH (INSTALL_HINTS says how to install it)
    cflags: tuple[str, ...]  # before the common CFLAGS
    memory: MemoryMap | None  # None: the compiler's own layout (a hosted program)
    run: tuple[str, ...] | None  # the command line, EXE for the program; None: no runner
    unsupported: str  # why programs cannot run on it yet; "" when they can
    binutils: str | None  # prefix of size / objdump / nm for its ELF; None: not measured
    instruction_counter: str | None  # what counts instructions per inference; None: nothing
    chip: str | None  # the chip of BUDGETS it stands for; None: none (a functional check)
    executable: str  # the runner program's file name
    sanitizers: bool  # whether ASan / UBSan builds exist

    @property
    def tools(self) -> tuple[str, ...]:
        """Every program building, running and measuring for it needs."""
        binutils = tuple(self.binutils + t for t in BINUTILS) if self.binutils else ()
        emulator = self.run[:1] if self.run and self.run[0] != EXE else ()
        return (self.compiler, *binutils, *emulator)


RV32IMC_FLAGS = ("-march=rv32imc", "-mabi=ilp32", "--specs=picolibc.specs", "--oslib=semihost")
QEMU_SEMIHOSTING = ("-semihosting-config", "enable=on,target=native")
TARGETS: dict[str, FirmwareTarget] = {t.name: t for t in (
    FirmwareTarget(
        name="host", isa="the host's", compiler="gcc", cflags=(), memory=None, run=(EXE,),
        unsupported="", binutils=None, instruction_counter=None, chip=None,
        executable="runner", sanitizers=True),
    # QEMU virt: RAM from 0x80000000; the low 4 MB play the flash (code, rodata), 1 MB
    # above them the SRAM (data, bss, stack); the ESP32-C3's instruction set, counted
    FirmwareTarget(
        name="rv32", isa="RV32IMC", compiler="riscv64-unknown-elf-gcc", cflags=RV32IMC_FLAGS,
        memory=MemoryMap(0x80000000, 0x400000, 0x80400000, 0x100000),
        run=("qemu-system-riscv32", "-machine", "virt", "-nographic", "-bios", "none",
             "-kernel", EXE, *QEMU_SEMIHOSTING, "-icount", "shift=0"),
        unsupported="", binutils="riscv64-unknown-elf-",
        instruction_counter="RV32IMC instret under qemu-system-riscv32 -icount",
        chip="esp32c3", executable="runner.elf", sanitizers=False),
    # the chip's own map: flash through the cache at 0x42000000 (IROM), DRAM from
    # 0x3FC80000 (SRAM1 + SRAM2, 384 KB)
    FirmwareTarget(
        name="esp32c3", isa="RV32IMC", compiler="riscv64-unknown-elf-gcc",
        cflags=RV32IMC_FLAGS, memory=MemoryMap(0x42000000, 4096 * KB, 0x3FC80000, 384 * KB),
        run=None, unsupported="no runner for the chip itself yet: flashing is a later step "
        "(`qflow flash` builds the example app with ESP-IDF)",
        binutils="riscv64-unknown-elf-", instruction_counter=None, chip="esp32c3",
        executable="runner.elf", sanitizers=False),
    # the ESP8266's core, the Xtensa that Debian packages a compiler for: it stands in for
    # the ESP32's Xtensa code; -mtext-section-literals keeps literal pools in the code's
    # section (as code run from flash needs), not in a separate one
    FirmwareTarget(
        name="lx106", isa="Xtensa LX106", compiler="xtensa-lx106-elf-gcc",
        cflags=("-mtext-section-literals",), memory=None,
        run=("qemu-system-xtensa", "-M", "lx60-nommu", "-cpu", "lx106", "-nographic",
             "-semihosting", "-kernel", EXE),
        unsupported="no C library to link the runner against: picolibc has no Xtensa "
        "semihosting (no file I/O) and the lx106's libgcc lacks __muldi3, __divsi3, "
        "__udivsi3 and __umodsi3; only freestanding objects build",
        binutils="xtensa-lx106-elf-", instruction_counter=None, chip="esp32",
        executable="runner.elf", sanitizers=False),
)}


def firmware_target(target: str | FirmwareTarget) -> FirmwareTarget:
    """The record of a target named (a record is returned as it is); FirmwareError naming
    the unknown name and the known ones otherwise."""
    if isinstance(target, FirmwareTarget):
        return target
    if target not in TARGETS:
        raise FirmwareError(f"unknown firmware target {target!r}; choose from "
                            f"{', '.join(TARGETS)}")
    return TARGETS[target]

