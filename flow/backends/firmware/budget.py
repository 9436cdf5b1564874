"""Memory budgets: what each chip offers, what ESP-IDF itself takes, and size_report.json
(the model's flash and RAM against them); check_budget names what does not fit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from flow.backends.firmware.common import KB, FirmwareError, coded_output
from flow.backends.firmware.ops import op

if TYPE_CHECKING:
    from flow.backends.firmware.plan import Plan

# SRAM, static DRAM and flash per chip: on the ESP32 at most 160 KB of DRAM can hold static
# data (.data/.bss), the heap gets the rest, so a bigger arena is allocated at init
BUDGETS: dict[str, dict[str, int]] = {
    "esp32": {"sram": 520 * KB, "static_dram": 160 * KB, "flash": 4096 * KB},
    "esp32c3": {"sram": 400 * KB, "static_dram": 400 * KB, "flash": 4096 * KB},
    "esp32s3": {"sram": 512 * KB, "static_dram": 512 * KB, "flash": 4096 * KB},
}
# the example app's partition table gives the factory app this much of a 4 MB flash
APP_PARTITION = 0x3F0000
# ESP-IDF's own share of the app image and of the SRAM, beside the model. ESP-IDF v5's
# guide "Minimizing Binary Size" (api-guides/performance/size) shows a minimal esp32 app
# at 174689 bytes of image (117391 of flash .text + .rodata, 48834 of IRAM code, 8464 of
# .data) and 10608 bytes of static DRAM beside the 48834 of IRAM. Flash: that image
# rounded up to 192 KB, for the example app's stdio and esp_timer. RAM: static DRAM +
# IRAM (59442 bytes) plus the start-up tasks' stacks (the 8 KB main task of our
# sdkconfig.defaults, idle, IPC and esp_timer tasks: about 16 KB), rounded up to 80 KB.
# Chip-level reservations (the ESP32's flash cache in SRAM, ROM data) are not included.
ESP_IDF_FLASH_BYTES = 192 * KB
ESP_IDF_RAM_BYTES = 80 * KB
# the model's code when no RV32 build has been measured: the RV32 runner's .text (qnn
# kernels, model.c, the runner and picolibc's stdio) is 22-24 KB for the test models;
# 32 KB leaves room for Xtensa code, less dense than RV32IMC's compressed instructions
CODE_BYTES_ESTIMATE = 32 * KB
# what the app partition leaves for the model's constants (plan() fits them into it)
CONSTANTS_ROOM = APP_PARTITION - ESP_IDF_FLASH_BYTES - CODE_BYTES_ESTIMATE


def size_report(p: Plan, chip: str, code_bytes: int | None = None) -> dict[str, Any]:
    """size_report.json: constants, code and arena against each chip's budget. code_bytes:
    the model's code as measured (the RV32 build's .text); None: CODE_BYTES_ESTIMATE."""
    weights, thresholds = p.weight_bytes, p.threshold_bytes
    n_weights = sum(int(getattr(lp.layer, "weights", np.zeros(0)).size) for lp in p.layers)
    if code_bytes is None:
        code, code_source = CODE_BYTES_ESTIMATE, "estimate (no RV32 build measured)"
    else:
        code, code_source = code_bytes, ("measured: .text of the RV32 build (kernels, model, "
                                         "runner and picolibc: an upper bound)")
    flash = weights + thresholds + code + ESP_IDF_FLASH_BYTES
    ram = p.arena + ESP_IDF_RAM_BYTES
    budgets = {}
    for name, b in BUDGETS.items():
        heap = p.arena > b["static_dram"]
        budgets[name] = {
            "sram_bytes": b["sram"], "flash_bytes": b["flash"],
            "arena_placement": "heap (allocated by qflow_model_init)" if heap else "static",
            "fits": ram <= b["sram"] and flash <= APP_PARTITION,
        }
    last = len(p.layers) - 1
    return {
        "model": p.model.name, "chip": chip,
        "weights_bytes": weights, "threshold_bytes": thresholds, "arena_bytes": p.arena,
        # all constants (weights, thresholds or requantization parameters, biases) per
        # weight: int8 pair words alone take 2 (issue #24's figure)
        "weights": n_weights, "constant_bytes_per_weight": (weights + thresholds)
        / max(n_weights, 1),
        "arena_buffers": [{"offset": o, "bytes": s, "holds": p.buffer_holds(k)}
                          for k, (o, s) in enumerate(zip(p.offsets, p.buffers, strict=True))],
        "arena_scratch": [{"offset": o, "bytes": lp.scratch_bytes, "layer": lp.layer.name}
                          for o, lp in zip(p.scratch, p.layers, strict=True)
                          if lp.scratch_bytes],
        "code_bytes": code, "code_bytes_source": code_source,
        "esp_idf_flash_bytes": ESP_IDF_FLASH_BYTES, "esp_idf_ram_bytes": ESP_IDF_RAM_BYTES,
        "flash_bytes_needed": flash, "ram_bytes_needed": ram,
        "app_partition_bytes": APP_PARTITION,
        "layers": [{
            **lp.size_row(),
            "output_buffer_bytes": (p.buffers[lp.index + (1 if p.input_buffer else 0)]
                                    if lp.index < last or coded_output(p.model) else 0),
        } for lp in p.layers],
        "budgets": budgets,
        "notes": [
            "weights, thresholds and biases are const: flash (.rodata / DROM), never RAM",
            f"the example app's partition table gives the app {APP_PARTITION // KB} KB of a "
            "4 MB flash (ESP-IDF's default single-app table gives 1 MB)",
            f"flash needed = constants + code + ESP-IDF's own {ESP_IDF_FLASH_BYTES // KB} KB; "
            f"RAM needed = arena + ESP-IDF's own {ESP_IDF_RAM_BYTES // KB} KB (a minimal "
            "ESP-IDF v5 app's static RAM, IRAM and start-up stacks)",
            "on the ESP32 a static array above 160 KB does not fit DRAM: such an arena is "
            "allocated from the heap by qflow_model_init()",
            # what the ops used say about their storage, once per op
            *dict.fromkeys(note for lp in p.layers for note in op(lp.layer).NOTES),
        ],
    }


def check_budget(report: dict[str, Any], chip: str) -> None:
    """FirmwareError naming the section that does not fit `chip`, its size and the budget."""
    if chip not in BUDGETS:
        raise FirmwareError(f"unknown chip {chip!r}; choose from {', '.join(BUDGETS)}")
    b, model = BUDGETS[chip], report["model"]
    arena, idf_ram = report["arena_bytes"], report["esp_idf_ram_bytes"]
    if arena + idf_ram > b["sram"]:
        parts = [(s["bytes"], f"buffer at {s['offset']} holding {s['holds']}")
                 for s in report["arena_buffers"]]
        parts += [(s["bytes"], f"the scratch of {s['layer']} at {s['offset']}")
                  for s in report["arena_scratch"]]
        size, what = max(parts)
        raise FirmwareError(f"{model}: the activation arena needs {arena} bytes (largest: "
                            f"{what}, {size} bytes) + ESP-IDF's own {idf_ram} bytes of RAM "
                            f"= {arena + idf_ram} bytes, more than the {b['sram'] // KB} KB "
                            f"SRAM of the {chip}")
    const = report["weights_bytes"] + report["threshold_bytes"]
    code, idf_flash = report["code_bytes"], report["esp_idf_flash_bytes"]
    total = const + code + idf_flash
    if total > APP_PARTITION:
        big = max(report["layers"], key=lambda r: r["weights_bytes"])
        raise FirmwareError(f"{model}: weights and thresholds need {const} bytes (largest: "
                            f"the weights of {big['name']}, {big['weights_bytes']} bytes) + "
                            f"code {code} bytes ({report['code_bytes_source']}) + ESP-IDF's "
                            f"own {idf_flash} bytes = {total} bytes of flash, more than the "
                            f"{APP_PARTITION // KB} KB app partition of a "
                            f"{b['flash'] // KB // KB} MB flash")
