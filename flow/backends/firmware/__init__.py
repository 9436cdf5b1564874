"""Firmware backend: C99 for ESP32-class MCUs, checked on the host and on RV32IMC in QEMU.

`generate` writes build_dir/firmware/, an ESP-IDF project: the example app (main/) and the
component components/qflow_model/ (the runtime kernels copied from the source tree's
firmware/, plus the per-model model.c/h and model_data.c/h: const packed weights and
thresholds or requantization multipliers and shifts, which land in flash, and one static
arena for the activations). `run` builds the same sources with a small runner program for
the host (gcc, warnings as errors, optional sanitizers) or for RV32IMC
(riscv64-unknown-elf-gcc + picolibc, run by qemu-system-riscv32 with semihosting file I/O
and -icount, which also counts instructions): each a record of `targets`.

Modules: `plan` (layer plans, storage, the arena over the graph), `ops` (the kind registry:
`dense`, `conv`, `pool` and `add` each hold everything specific to their kind),
`activation` (thresholds or requantization as stored, shared by the kinds that have one),
`emit` (model C), `package` (the ESP-IDF project, generate), `budget` (size_report.json,
budgets), `targets` (the firmware targets' records: host, rv32, esp32c3, lx106),
`toolchain` (compilers, QEMU, ELF), `runner` (build, run, measure), `cli`
(`qflow firmware`, `qflow flash`).
"""

from flow.backends.firmware.budget import (
    APP_PARTITION,
    BUDGETS,
    CODE_BYTES_ESTIMATE,
    CONSTANTS_ROOM,
    ESP_IDF_FLASH_BYTES,
    ESP_IDF_RAM_BYTES,
    check_budget,
    size_report,
)
from flow.backends.firmware.cli import register_cli
from flow.backends.firmware.common import (
    COMPONENT,
    RUNNER,
    FirmwareError,
    c_array,
    runtime_dir,
    runtime_sources,
    storage_offset,
    template_dir,
)
from flow.backends.firmware.dense import plan_layer
from flow.backends.firmware.emit import output_is_monotonic
from flow.backends.firmware.ops import OPS as LAYER_KINDS
from flow.backends.firmware.package import ensure_generated, generate, generator_sources
from flow.backends.firmware.plan import Plan, plan
from flow.backends.firmware.runner import measure, run
from flow.backends.firmware.targets import TARGETS, FirmwareTarget, firmware_target
from flow.backends.firmware.toolchain import SANITIZE, compile_program, run_program
from flow.backends.firmware.weights import pack_bits, pair_words, pairs_fit

# activation forms it builds
ACTIVATIONS = ("thresholds", "requant", "none")

__all__ = [
    "ACTIVATIONS",
    "LAYER_KINDS",
    "APP_PARTITION", "BUDGETS", "CODE_BYTES_ESTIMATE", "COMPONENT", "CONSTANTS_ROOM",
    "ESP_IDF_FLASH_BYTES", "ESP_IDF_RAM_BYTES", "RUNNER", "SANITIZE", "TARGETS", "FirmwareError",
    "FirmwareTarget", "Plan", "c_array", "check_budget", "compile_program", "ensure_generated",
    "firmware_target",
    "generate", "generator_sources", "measure", "output_is_monotonic", "pack_bits",
    "pair_words", "pairs_fit", "plan", "plan_layer", "register_cli", "run", "run_program",
    "runtime_dir", "runtime_sources", "size_report", "storage_offset", "template_dir",
]
