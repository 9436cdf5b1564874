"""Synthesis and place-and-route report of a generated RTL top (`qflow synth`).

Reads build_dir/rtl/manifest.json (written by flow.backends.rtl) and runs, with the open
tools only:

1. Yosys `synth_xilinx` (7-series), hierarchy kept: the totals and the per-layer figures
   (the module under each manifest layer instance; "other" is the rest: FIFOs, glue). FINN
   too builds each layer as its own IP, and the layers then add up to the total. A
   flattened run is reported beside it; neither is always smaller (synth.json holds both),
   so the kept one is used.
   The figures are counted the way Vivado's utilisation report counts, so that they compare
   with FINN's / BNN-PYNQ's published numbers:
     LUT  = LUT1..LUT6 + INV (Vivado maps INV to a LUT1) + LUTs used as memory, where a
            LUTRAM or SRL primitive counts as the LUT sites it occupies (RAM32M/RAM64M 4,
            RAM32X1D/RAM64X1D 2, RAM128X1D 4, SRL16E/SRLC32E 1, ...). MUXF7/MUXF8 and CARRY4
            are not LUTs and are listed apart.
     FF   = FD* registers (+ LD* latches, which Vivado also lists under Slice Registers).
     BRAM = Vivado's "Block RAM Tile": RAMB36E1 = 1, RAMB18E1 = 0.5 (FINN's and BNN-PYNQ's
            tables use this unit); the count in 18 Kb halves (BRAM_18K) is given beside it.
     DSP  = DSP48E1.
2. Yosys `synth_ecp5` + nextpnr-ecp5 (or synth_ice40 + nextpnr-ice40) for a placed and
   routed Fmax. ECP5 runs out of context (ports left off the pins, no IO buffers), as the
   accelerator's ports meet on-chip logic in a system; iCE40 has no such mode, so its
   ports must fit the package's pins and pad-to-register paths count in its Fmax.

Everything lands in build_dir/synth/ (scripts, logs, stat JSON, nextpnr report) and
build_dir/synth.json; build_dir/synth/summary.txt is the readable summary.

Modules: `tools` (running the tools), `yosys` (scripts and Vivado-style counts), `nextpnr`
(place and route, Fmax), `summary` (synth.json's verdicts, summary.txt); here the flow
that runs them and the `qflow synth` command.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flow.argtypes import positive_float
from flow.atomic import replace_dir, write_json, write_text
from flow.backends.rtl.generate import current_manifest, load_manifest, rtl_dir
from flow.ir import load
from flow.results import write_result
from flow.synth.nextpnr import PNR_DEVICES, critical_path, parse_nextpnr_log, place_and_route, pnr_summary
from flow.synth.summary import finish, summary_text
from flow.synth.tools import Session, ToolResult, progress, run_tool, tool_path, yowasp_mounts
from flow.synth.yosys import (
    XILINX_PARTS,
    find_instance,
    flat_cells,
    layer_rows,
    module_cells,
    xilinx_fit,
    xilinx_flat_run,
    xilinx_resources,
    xilinx_run,
)

__all__ = [
    "DEFAULT_DEVICE", "DEFAULT_PART", "DEFAULT_TIMEOUT", "PNR_DEVICES", "XILINX_PARTS", "Session",
    "ToolResult", "critical_path", "find_instance", "finish", "flat_cells", "layer_rows",
    "module_cells", "parse_nextpnr_log", "place_and_route", "pnr_summary", "progress",
    "read_manifest", "register_cli", "run_tool", "summary_text", "synthesize", "tool_path",
    "xilinx_fit", "xilinx_flat_run", "xilinx_resources", "xilinx_run", "yowasp_mounts",
]

log = logging.getLogger("qflow.synth")

DEFAULT_PART = "xc7z020"
DEFAULT_DEVICE = "ecp5-85k"
DEFAULT_TIMEOUT = 3600.0


def read_manifest(build_dir: Path) -> dict[str, Any]:
    """build_dir/rtl/manifest.json with its files as absolute paths (load_manifest: each
    inside rtl/). In a qflow build (an ir.json beside it) rtl/ is first regenerated unless
    its stamp matches that IR, so synthesis never reports on a stale design; a bare rtl/
    folder is taken as it is."""
    if (build_dir / "ir.json").is_file():
        return current_manifest(load(build_dir), build_dir)
    return load_manifest(rtl_dir(build_dir))


def synthesize(build_dir: Path, device: str = DEFAULT_DEVICE, part: str = DEFAULT_PART,
               clock_mhz: float = 100.0, pnr: bool = True,
               timeout: float | None = DEFAULT_TIMEOUT, keep_netlist: bool = False,
               flat: bool = True) -> dict[str, Any]:
    """Run the synthesis report of build_dir's RTL; writes build_dir/synth/ and synth.json.
    flat=False leaves out the flattened comparison run (a large design's second hour).

    Tool failures are recorded (result["ok"] False, result["errors"]) rather than raised,
    so that the logs stay on disk for a look; a design that does not fit is not an error.
    """
    build_dir = Path(build_dir).resolve()
    if device not in PNR_DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(PNR_DEVICES)}")
    if part not in XILINX_PARTS:
        raise ValueError(f"unknown part {part!r}; choose from {', '.join(XILINX_PARTS)}")
    m = read_manifest(build_dir)
    cwd = rtl_dir(build_dir)  # where the top's memory image names are relative to
    result: dict[str, Any] = {"top": m["top"], "build_dir": str(build_dir),
                              "expected": m.get("expected", {})}
    t0 = time.monotonic()

    def build(out: Path) -> None:
        s = Session(m, out, cwd, timeout)
        log.info("%s -> %s (logs in %s while running)", m["top"],
                 build_dir / "synth", out)
        # two at a time (two cores), the longest first: the Xilinx counts and the
        # place-and-route chain, then the flattened comparison run
        with ThreadPoolExecutor(2) as pool:
            xilinx = pool.submit(xilinx_run, s, part)
            placed = pool.submit(place_and_route, s, device, clock_mhz, keep_netlist) if pnr else None
            flattened = pool.submit(xilinx_flat_run, s, part) if flat else None
            result["xilinx"] = xilinx.result()
            if placed:
                result["pnr"] = placed.result()
            if flattened:
                f = flattened.result()
                result["xilinx"]["seconds"]["flat"] = f.pop("flat_seconds")
                result["xilinx"].update(f)
        finish(result, m)
        result["seconds"] = round(time.monotonic() - t0, 1)
        write_text(out / "summary.txt", summary_text(result))

    replace_dir(build_dir / "synth", build)
    if (build_dir / "ir.json").is_file():
        write_result(build_dir, "synth", load(build_dir), result)
    else:
        write_json(build_dir / "synth.json", result)
    return result


def cmd_synth(a: argparse.Namespace) -> None:
    r = synthesize(Path(a.build_dir), device=a.device, part=a.part, clock_mhz=a.clock_mhz,
                   pnr=not a.no_pnr, timeout=a.timeout or None, keep_netlist=a.keep_netlist)
    print(summary_text(r), end="")
    if not r["ok"]:
        raise RuntimeError(f"synthesis failed, see {Path(a.build_dir) / 'synth'}: "
                           + "; ".join(r["errors"][:3]))
    if a.require_fit and r["fits"] is not True:
        raise SystemExit(1)


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("synth", help="Yosys LUT/FF/BRAM/DSP counts and nextpnr Fmax")
    s.add_argument("build_dir")
    s.add_argument("--device", default=DEFAULT_DEVICE, choices=list(PNR_DEVICES),
                   help=f"place-and-route device (default {DEFAULT_DEVICE})")
    s.add_argument("--part", default=DEFAULT_PART, choices=list(XILINX_PARTS),
                   help=f"Xilinx part whose capacity the counts are checked against "
                        f"(default {DEFAULT_PART})")
    s.add_argument("--clock-mhz", type=positive_float, default=100.0, help="nextpnr target clock")
    s.add_argument("--no-pnr", action="store_true", help="Yosys counts only, no nextpnr")
    s.add_argument("--require-fit", action="store_true",
                   help="exit 1 unless the design fits the part and the device")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per tool run, 0 for none (default {DEFAULT_TIMEOUT:g})")
    s.add_argument("--keep-netlist", action="store_true",
                   help="keep the place-and-route netlist JSON in synth/")
    s.set_defaults(func=cmd_synth)
