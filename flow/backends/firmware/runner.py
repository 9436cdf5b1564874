"""Building the generated model with the test runner (firmware/qnn_runner.c) for a
firmware target (targets.py), running it on input codes, and measuring it: the host's and
the measured target's accumulators, and that target's sizes, placement and instructions
(for rv32: RISC-V instret under QEMU -icount)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from flow.atomic import write_json
from flow.backends.firmware.budget import check_budget, size_report
from flow.backends.firmware.common import COMPONENT, RUNNER, FirmwareError, input_ctype, runtime_dir
from flow.backends.firmware.package import ensure_generated, target_chip
from flow.backends.firmware.plan import Plan, plan
from flow.backends.firmware.targets import TARGETS, FirmwareTarget, firmware_target
from flow.backends.firmware.toolchain import (
    SANITIZE,
    compile_program,
    constants_in_flash,
    elf_sizes,
    missing_tools,
    run_program,
)
from flow.inputs import check_codes
from flow.ir import Model

CLOCK_MHZ = 160
# what `measure` builds, runs and measures beside the host
MEASURED = TARGETS["rv32"]


def build(model: Model, build_dir: Path, target: str | FirmwareTarget = "host",
          sanitize: bool = False, profile: bool = True) -> Path:
    """Compile the generated model + runtime + runner for a target (a record or its name);
    returns the program's folder (an absolute path, whatever the working directory and
    build_dir)."""
    t = firmware_target(target)
    if sanitize and not t.sanitizers:
        raise FirmwareError(f"firmware target {t.name} has no sanitizer builds")
    build_dir = Path(build_dir).resolve()
    src = ensure_generated(model, build_dir) / "components" / COMPONENT
    out = build_dir / "firmware_build" / (t.name + ("-san" if sanitize else ""))
    out.mkdir(parents=True, exist_ok=True)
    # the runner takes its file names at compile time (semihosting passes no arguments)
    defs = [f"-DQNN_RUNNER_INPUT={json.dumps(str(out / 'in.bin'))}",
            f"-DQNN_RUNNER_OUTPUT={json.dumps(str(out / 'out.bin'))}",
            f"-DQFLOW_PROFILE={int(profile)}", f"-I{src}"]
    compile_program([*sorted(src.glob("*.c")), runtime_dir() / RUNNER], out / t.executable,
                    t, defs + (SANITIZE if sanitize else []))
    return out


def input_bytes(model: Model, codes: np.ndarray) -> bytes:
    """Checked codes as the runner reads them: qflow_input_t, one sample after another."""
    return codes.astype(np.dtype(input_ctype(model).removesuffix("_t"))).tobytes()


def parse_stats(stdout: str) -> dict[str, Any]:
    """The runner's qnn-stats (instret per inference) and qnn-stage (per stage) lines."""
    stats: dict[str, Any] = {"stages": []}
    for line in stdout.splitlines():
        f = line.split()
        if f[:1] == ["qnn-stats"]:
            stats.update({f[k]: int(f[k + 1]) for k in range(1, len(f) - 1, 2)})
        elif f[:1] == ["qnn-stage"]:
            stats["stages"].append(int(f[3]))
    return stats


def execute(model: Model, build_dir: Path, codes: np.ndarray,
            target: str | FirmwareTarget = "host", sanitize: bool = False
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """Build and run on one target on checked codes; returns (accumulators [N, C], runner
    statistics)."""
    t = firmware_target(target)
    out = build(model, build_dir, t, sanitize)
    (out / "in.bin").write_bytes(input_bytes(model, codes))
    (out / "out.bin").unlink(missing_ok=True)
    stdout = run_program(out / t.executable, t, out)
    channels = model.output.acc_scale.shape[0]
    acc = np.fromfile(out / "out.bin", dtype="<i4").reshape(-1, channels).astype(np.int64)
    if len(acc) != len(codes):
        raise FirmwareError(f"firmware {t.name}: {len(acc)} outputs for {len(codes)} inputs")
    return acc, parse_stats(stdout)


def run(model: Model, build_dir: Path, codes: np.ndarray, target: str | FirmwareTarget = "host",
        sanitize: bool = False) -> np.ndarray:
    """Input codes [N, features] -> the last layer's int64 accumulators, computed by the
    generated C on a target (a record or its name: the host, RV32IMC under QEMU, ...)."""
    t = firmware_target(target)
    return execute(model, build_dir, check_codes(model, codes, f"firmware {t.name} inputs"),
                   t, sanitize)[0]


def measure(model: Model, build_dir: Path, codes: np.ndarray, sanitize: bool = False,
            chip: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Build and run on the host and on MEASURED (rv32: RV32IMC in QEMU): ({"host", "rv32"}:
    accumulators, details for firmware.json: sizes with the measured code, the RV32 ELF's
    sections and constants' placement, instructions per inference, per layer and per MAC).
    The budget is checked again with the measured code (FirmwareError naming what does not
    fit) and the generated folder's size_report.json updated. Without the RV32 tools the
    host part runs alone: details["skipped"]["rv32"] says what is missing, sizes use the
    code estimate and the instruction counts are None."""
    build_dir = Path(build_dir).resolve()
    chip = target_chip(model, chip)
    codes = check_codes(model, codes, "firmware inputs")
    host, _ = execute(model, build_dir, codes, "host", sanitize)
    t = MEASURED
    missing = "; ".join(missing_tools(t))
    if missing:
        return {"host": host}, {
            "sizes": checked_sizes(plan(model), chip, build_dir), "skipped": {t.name: missing},
            "instructions_per_inference": None, "estimated_latency_us_at_160mhz": None,
            "notes": [f"{t.isa} build and run skipped: {missing}"]}
    measured, stats = execute(model, build_dir, codes, t)
    return {"host": host, t.name: measured}, measured_details(model, build_dir, chip, stats, t)


def checked_sizes(p: Plan, chip: str, build_dir: Path, code_bytes: int | None = None
                  ) -> dict[str, Any]:
    """The size report (the code measured, or else estimated) checked against the chip's
    budget and written to the generated folder's size_report.json."""
    sizes = size_report(p, chip, code_bytes=code_bytes)
    check_budget(sizes, chip)
    write_json(build_dir / "firmware" / "size_report.json", sizes)
    return sizes


def measured_details(model: Model, build_dir: Path, chip: str, stats: dict[str, Any],
                     t: FirmwareTarget) -> dict[str, Any]:
    """firmware.json's measurements of a target's build and run (see `measure`)."""
    elf = build_dir / "firmware_build" / t.name / t.executable
    p = plan(model)
    elf_bytes = elf_sizes(elf, t)
    sizes = checked_sizes(p, chip, build_dir, elf_bytes["text"])
    stages = stats["stages"]
    layer_instr = stages[1:] if p.input_buffer else stages
    layers = []
    by_kind: dict[str, list[int]] = {}
    for lp, instr in zip(p.layers, layer_instr, strict=True):
        layers.append({"name": lp.layer.name, "kernel": lp.kernel_name, "macs": lp.macs,
                       "instructions": instr, "instructions_per_mac": instr / lp.macs})
        kind = by_kind.setdefault(lp.mac_kind, [0, 0])
        kind[0] += instr
        kind[1] += lp.macs
    per_inf = stats["instret_min"]
    details = {
        "sizes": sizes,
        f"{t.name}_elf_bytes": elf_bytes,
        f"{t.name}_placement": constants_in_flash(elf, t),
        "instructions_per_inference": per_inf,
        "instructions_per_inference_max": stats["instret_max"],
        "input_conversion_instructions": stages[0] if p.input_buffer else 0,
        "layers": layers,
        "instructions_per_mac": {k: v[0] / v[1] for k, v in by_kind.items()},
        "estimated_latency_us_at_160mhz": per_inf / CLOCK_MHZ,
        "notes": [
            f"instructions counted by {t.instruction_counter}; "
            "runtime library and model built with -O2",
            f"latency is an estimate: instructions / {CLOCK_MHZ} MHz at 1 instruction per "
            "cycle, ignoring flash cache misses, multiply latency and branch penalties",
            "per-layer counts include one profiling call (a few instructions) each",
        ],
    }
    return details
