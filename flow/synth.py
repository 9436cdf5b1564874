"""Synthesis and place-and-route report of a generated RTL top (`qflow synth`).

Reads build_dir/rtl/manifest.json (written by flow.backends.rtl) and runs, with the open
tools only:

1. Yosys `synth_xilinx` (7-series), hierarchy kept: the totals and the per-layer figures
   (the module under each manifest layer instance; "other" is the rest: FIFOs, glue). FINN
   too builds each layer as its own IP, and the layers then add up to the total. A
   flattened run is reported beside it; neither is always smaller (measured: TFC-w1a1
   6699 flat against 4427 kept, LFC-w1a1 17217 against 18608), so the kept one is used.
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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flow.atomic import replace_dir, write_json, write_text

log = logging.getLogger("qflow.synth")

# Vivado LUT sites per LUT-as-memory primitive (7-series and UltraScale libraries)
LUTRAM_SITES = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM512X1S": 8, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
    "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
}
SRL_SITES = {"SRL16": 1, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
LOGIC_LUTS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}


@dataclass(frozen=True)
class XilinxPart:
    family: str
    lut: int
    ff: int
    bram36: int
    dsp: int


XILINX_PARTS = {
    "xc7z020": XilinxPart("xc7", 53200, 106400, 140, 220),  # Pynq-Z1 / Pynq-Z2
    "xc7z010": XilinxPart("xc7", 17600, 35200, 60, 80),
    "xc7a35t": XilinxPart("xc7", 20800, 41600, 50, 90),
    "xc7a100t": XilinxPart("xc7", 63400, 126800, 135, 240),
    "xc7z045": XilinxPart("xc7", 218600, 437200, 545, 900),  # ZC706 (FINN paper)
}


@dataclass(frozen=True)
class PnrDevice:
    family: str  # ecp5 | ice40
    args: tuple[str, ...]
    io_pins: int = 0  # iCE40 (placed with its pins): user IO of the package


PNR_DEVICES = {
    "ecp5-85k": PnrDevice("ecp5", ("--85k", "--package", "CABGA381")),
    "ecp5-45k": PnrDevice("ecp5", ("--45k", "--package", "CABGA381")),
    "ecp5-25k": PnrDevice("ecp5", ("--25k", "--package", "CABGA381")),
    "ice40-hx8k": PnrDevice("ice40", ("--hx8k", "--package", "ct256"), 206),
    "ice40-up5k": PnrDevice("ice40", ("--up5k", "--package", "sg48"), 39),
}
DEFAULT_PART = "xc7z020"
DEFAULT_DEVICE = "ecp5-85k"
DEFAULT_TIMEOUT = 3600.0
PROGRESS_EVERY = 30.0  # seconds between progress lines of a running tool


# ----------------------------------------------------------------------------------------
# running the tools


def tool_path(name: str) -> str:
    """The YoWASP build of a tool beside this Python (the venv), else one on PATH."""
    for cand in (f"yowasp-{name}", name):
        local = Path(sys.executable).parent / cand
        if local.exists():
            return str(local)
        found = shutil.which(cand)
        if found:
            return found
    raise RuntimeError(f"{name} not found: install yowasp-{name} (pip) or put {name} on PATH")


@dataclass
class ToolResult:
    name: str
    log: Path
    returncode: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# the lines that name a stage: Yosys' numbered passes, nextpnr's packer/placer/router steps
STAGE_RE = re.compile(r"^(\d+(?:\.\d+)*\. Executing .*|Info: (?:Packing|Running|Routing|Creating"
                      r"|Promoting|Setting up|Generating)\b.*)$")


def progress(path: Path, limit: int = 120) -> str:
    """The current stage and the last line of a growing log, for a progress message."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    stage = next((ln for ln in reversed(lines) if STAGE_RE.match(ln)), "")
    last = lines[-1] if lines else ""
    return stage[:limit] + (f" | {last[:limit]}" if last != stage else "")


def run_tool(name: str, argv: list[str], logfile: Path, cwd: Path, env: dict[str, str],
             timeout: float | None) -> ToolResult:
    """Run argv with stdout+stderr to logfile; a progress line every PROGRESS_EVERY s."""
    log.info("%s started (log %s)", name, logfile)
    res = ToolResult(name, logfile)
    t0 = time.monotonic()
    with open(logfile, "wb") as out:
        # own process group, so that a timeout ends the tool and anything it started
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)
        while True:
            try:
                proc.wait(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - t0
                if timeout is not None and elapsed > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    res.timed_out = True
                    break
                log.info("%s running %.0fs: %s", name, elapsed, progress(logfile))
    res.returncode = proc.returncode
    res.seconds = round(time.monotonic() - t0, 2)
    text = logfile.read_text(errors="replace")
    # Yosys repeats its error at the end of the log: keep each line once
    res.errors = list(dict.fromkeys(ln.strip() for ln in text.splitlines() if "ERROR" in ln))[:20]
    if res.timed_out:
        res.errors.insert(0, f"{name} timed out after {timeout:.0f} s")
    elif not res.ok and not res.errors:
        res.errors = [f"{name} exited with code {res.returncode}: {progress(logfile)}"]
    log.info("%s %s in %.1fs", name, "done" if res.ok else "FAILED", res.seconds)
    return res


# ----------------------------------------------------------------------------------------
# Yosys statistics


def _bare(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def module_cells(stat: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Local cell counts by type per module, from `stat -json` (submodules appear as types)."""
    return {_bare(m): {_bare(t): int(n) for t, n in v["num_cells_by_type"].items()}
            for m, v in stat["modules"].items()}


def flat_cells(mods: dict[str, dict[str, int]], top: str) -> dict[str, int]:
    """Primitive cell counts of `top` with its submodules expanded."""
    memo: dict[str, dict[str, int]] = {}

    def walk(m: str) -> dict[str, int]:
        if m not in memo:
            acc: dict[str, int] = {}
            for t, n in mods[m].items():
                sub = walk(t) if t in mods else {t: 1}
                for k, v in sub.items():
                    acc[k] = acc.get(k, 0) + n * v
            memo[m] = acc
        return memo[m]

    return dict(sorted(walk(_bare(top)).items()))


def xilinx_resources(cells: dict[str, int]) -> dict[str, Any]:
    """Vivado-style utilisation figures from 7-series primitive counts (see module doc)."""
    n = cells.get
    lut_logic = sum(n(t, 0) for t in LOGIC_LUTS)
    lutram = sum(c * LUTRAM_SITES[t] for t, c in cells.items() if t in LUTRAM_SITES)
    srl = sum(c * SRL_SITES[t] for t, c in cells.items() if t in SRL_SITES)
    ramb36 = n("RAMB36E1", 0) + n("FIFO36E1", 0) + n("RAMB36E2", 0)
    ramb18 = n("RAMB18E1", 0) + n("FIFO18E1", 0) + n("RAMB18E2", 0)
    return {
        "lut": lut_logic + lutram + srl, "lut_logic": lut_logic, "lut_as_memory": lutram + srl,
        "lutram": lutram, "srl": srl,
        "ff": sum(c for t, c in cells.items() if t.startswith(("FD", "LD"))),
        "bram36": ramb36 + ramb18 / 2, "bram18": 2 * ramb36 + ramb18,
        "ramb36": ramb36, "ramb18": ramb18,
        "dsp": n("DSP48E1", 0) + n("DSP48E2", 0),
        "carry4": n("CARRY4", 0), "muxf7": n("MUXF7", 0), "muxf8": n("MUXF8", 0),
        "cells": {t: c for t, c in cells.items() if not t.startswith("$")},
    }


def xilinx_fit(res: dict[str, Any], part: str) -> list[str]:
    """Reasons the figures exceed the part (empty: fits)."""
    cap = XILINX_PARTS[part]
    over = [("LUTs", res["lut"], cap.lut), ("FFs", res["ff"], cap.ff),
            ("BRAM36 tiles", res["bram36"], cap.bram36), ("DSPs", res["dsp"], cap.dsp)]
    return [f"{what}: {used:g} > {avail} on {part}" for what, used, avail in over
            if used > avail]


def find_instance(inst_json: dict[str, Any], top: str, path: str) -> str | None:
    """Module type of the hierarchical instance `path` (dots between levels; a generate
    block's dotted name is also tried as a single cell name) below `top`."""
    mods = {_bare(m): v.get("cells", {}) for m, v in inst_json["modules"].items()}

    def walk(mod: str, rest: str) -> str | None:
        cells = mods.get(mod, {})
        if rest in cells:
            return _bare(cells[rest]["type"])
        parts = rest.split(".")
        for i in range(len(parts) - 1, 0, -1):  # longest cell name first
            head, tail = ".".join(parts[:i]), ".".join(parts[i:])
            if head in cells:
                found = walk(_bare(cells[head]["type"]), tail)
                if found:
                    return found
        return None

    return walk(_bare(top), path)


# ----------------------------------------------------------------------------------------
# nextpnr reports


FMAX_RE = re.compile(r"Max frequency for clock '([^']+)': ([\d.]+) MHz \((PASS|FAIL) at ([\d.]+)")
SRC_RE = re.compile(r"^(.*:\d+)\.\d+-[\d.]+$")
UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_nextpnr_log(text: str) -> dict[str, Any]:
    """Fmax per clock (the last, post-route report wins) and the device utilisation table."""
    fmax: dict[str, dict[str, float]] = {}
    for clk, got, _, want in FMAX_RE.findall(text):
        fmax[clk] = {"achieved": float(got), "constraint": float(want)}
    start = text.rfind("Device utilisation:")
    util = {k: {"used": int(u), "available": int(a)}
            for k, u, a in UTIL_RE.findall(text[start:] if start >= 0 else "")}
    return {"fmax": fmax, "utilization": util}


def critical_path(report: dict[str, Any], base: Path | None = None) -> dict[str, Any] | None:
    """The worst path of nextpnr's --report JSON: endpoints, delays, RTL source lines
    (relative ones resolved against `base`, the folder the tools ran in)."""
    paths = report.get("critical_paths") or []
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(s["delay"] for s in p["path"]))
    steps = worst["path"]
    sources: list[str] = []
    for s in steps:
        for src in s.get("sources", []):
            src = SRC_RE.sub(r"\1", src)  # file:line.col-line.col -> file:line
            if base is not None and not src.startswith("/"):
                src = os.path.normpath(base / src)
            if not src.startswith("/share/") and src not in sources:  # /share: Yosys' own
                sources.append(src)
    return {
        "from": worst.get("from"), "to": worst.get("to"),
        "start_cell": steps[0]["from"]["cell"], "end_cell": steps[-1]["to"]["cell"],
        "delay_ns": round(sum(s["delay"] for s in steps), 3),
        "logic_ns": round(sum(s["delay"] for s in steps if s["type"] != "routing"), 3),
        "routing_ns": round(sum(s["delay"] for s in steps if s["type"] == "routing"), 3),
        "logic_levels": sum(1 for s in steps if s["type"] == "logic"),
        "rtl_sources": sources[:12],
    }


def pnr_summary(log_text: str, report: dict[str, Any] | None,
                base: Path | None = None) -> dict[str, Any]:
    """Fmax and utilisation from the JSON report when there is one, else from the log."""
    parsed = parse_nextpnr_log(log_text)
    if report:
        parsed["fmax"] = {c: {"achieved": round(float(v["achieved"]), 2),
                              "constraint": float(v["constraint"])}
                          for c, v in report.get("fmax", {}).items()}
        parsed["utilization"] = report.get("utilization", parsed["utilization"])
        parsed["critical_path"] = critical_path(report, base)
    util = parsed["utilization"]
    parsed["over_capacity"] = [f"{k}: {v['used']}/{v['available']}" for k, v in util.items()
                               if v["used"] > v["available"]]
    achieved = [v["achieved"] for v in parsed["fmax"].values()]
    parsed["fmax_mhz"] = min(achieved) if achieved else None
    return parsed


# ----------------------------------------------------------------------------------------
# the flow


def read_manifest(build_dir: Path) -> dict[str, Any]:
    path = build_dir / "rtl" / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no RTL manifest; run `qflow export` (rtl backend) first")
    m = json.loads(path.read_text())
    for key in ("top", "sources"):
        if key not in m:
            raise ValueError(f"{path}: missing key {key!r}")
    base = path.parent
    m["sources"] = [str((base / s).resolve()) for s in m["sources"]]
    m["mem_files"] = [str((base / s).resolve()) for s in m.get("mem_files", [])]
    for f in m["sources"] + m["mem_files"]:
        if not Path(f).exists():
            raise FileNotFoundError(f"{path}: lists {f}, which does not exist")
    return m


def yowasp_mounts(cwd: Path, paths: list[Path]) -> str:
    """YOWASP_MOUNT for the tools' WebAssembly sandbox, whose /tmp is a private folder that
    would hide a build under /tmp: each folder the tools need is mounted at its own path
    (/tmp/<name> outranks the sandbox's /tmp, the longer prefix winning), and `cwd` at /,
    where the sandbox resolves relative names such as the top's $readmemh images."""
    roots = set()
    for path in paths:
        parts = path.resolve().parts  # ("/", "work", ...)
        roots.add(Path(*parts[:3 if len(parts) > 2 and parts[1] == "tmp" else 2]))
    mounts = [f"/={cwd}", *(f"{r}={r}" for r in sorted(roots))]
    for m in mounts:
        if ":" in m or m.count("=") != 1:
            raise ValueError(f"{m.split('=', 1)[1]}: a path with ':' or '=' cannot be mounted")
    return ":".join(mounts)


@dataclass
class Session:
    """One synthesis run: the manifest, the output folder, and where the tools run (`cwd`,
    the folder of the memory images, which the generated top may name relative to it).
    Every path handed to a tool is absolute; `env` carries the sandbox's mounts."""

    manifest: dict[str, Any]
    out: Path
    cwd: Path
    timeout: float | None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        files = [Path(f) for f in self.manifest["sources"] + self.manifest["mem_files"]]
        self.env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(self.cwd, [self.out, *files])}

    def run(self, name: str, argv: list[str], logname: str) -> ToolResult:
        return run_tool(name, argv, self.out / logname, self.cwd, self.env, self.timeout)

    def read_sources(self) -> str:
        # -defer: modules are elaborated with their real parameters only, so a default such
        # as an empty $readmemh file name is never evaluated
        return "read_verilog -defer -sv " + " ".join(f'"{f}"' for f in self.manifest["sources"])

    def yosys(self, name: str, tag: str, lines: list[str]) -> ToolResult:
        script = self.out / f"{tag}.ys"
        script.write_text("\n".join([self.read_sources(), *lines]) + "\n")
        return self.run(name, [tool_path("yosys"), "-s", str(script)], f"{tag}.log")


def xilinx_script(s: Session, family: str, flat: bool) -> list[str]:
    tag, top = ("flat" if flat else "hier"), s.manifest["top"]
    lines = [  # -noiopad: the accelerator sits inside a shell, as in FINN's out-of-context runs
        f"synth_xilinx -family {family} -noiopad -top {top}" + (" -flatten" if flat else ""),
        f'tee -q -o "{s.out / f"xilinx_{tag}_stat.json"}" stat -json']
    if not flat:
        # the layer instances' module types (the top's cells and any parameterized ones)
        lines += [f"select {top}/c:* */t:$paramod*",
                  f'write_json -selected -noscopeinfo "{s.out / "xilinx_hier_cells.json"}"',
                  "select -clear"]
    return lines


def _layer_rows(m: dict[str, Any], mods: dict[str, dict[str, int]], inst: dict[str, Any],
                total: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    used: dict[str, float] = {"lut": 0, "ff": 0, "bram36": 0, "dsp": 0}
    for layer in m.get("layers", []):
        module = find_instance(inst, m["top"], layer["instance"])
        row = {k: layer.get(k) for k in ("name", "instance", "pe", "simd", "cycles")}
        row["module"] = module
        if module is None:
            row["error"] = f"instance {layer['instance']!r} not found below {m['top']}"
        else:
            r = xilinx_resources(flat_cells(mods, module))
            row.update({k: v for k, v in r.items() if k != "cells"})
            for k in used:
                used[k] += r[k]
        rows.append(row)
    other = {k: total[k] - used[k] for k in used}
    return rows, other


def _xilinx(s: Session, part: str) -> dict[str, Any]:
    """The hierarchy-preserving run: totals, fit against the part, per-layer figures."""
    family, m, out = XILINX_PARTS[part].family, s.manifest, s.out
    res: dict[str, Any] = {"part": part, "family": family, "seconds": {}}
    hier = s.yosys("yosys synth_xilinx (hier)", "xilinx_hier", xilinx_script(s, family, False))
    res["seconds"]["hier"] = hier.seconds
    if not hier.ok:
        return {**res, "ok": False, "errors": hier.errors}
    mods = module_cells(json.loads((out / "xilinx_hier_stat.json").read_text()))
    inst = json.loads((out / "xilinx_hier_cells.json").read_text())
    res["total"] = xilinx_resources(flat_cells(mods, m["top"]))
    res["capacity"] = XILINX_PARTS[part].__dict__
    res["fit_reasons"] = xilinx_fit(res["total"], part)
    res["fits"] = not res["fit_reasons"]
    res["ok"] = True
    res["layers"], res["other"] = _layer_rows(m, mods, inst, res["total"])
    return res


def _xilinx_flat(s: Session, part: str) -> dict[str, Any]:
    """The flattened run, for comparison only (its failure is noted, not an error)."""
    flat = s.yosys("yosys synth_xilinx (flat)", "xilinx_flat",
                   xilinx_script(s, XILINX_PARTS[part].family, True))
    if not flat.ok:
        return {"flat_errors": flat.errors, "flat_seconds": flat.seconds}
    stat = json.loads((s.out / "xilinx_flat_stat.json").read_text())
    total = xilinx_resources(flat_cells(module_cells(stat), s.manifest["top"]))
    return {"flat_total": {k: v for k, v in total.items() if k != "cells"},
            "flat_seconds": flat.seconds}


def _pnr(s: Session, device: str, clock_mhz: float, keep_netlist: bool) -> dict[str, Any]:
    dev, m, out = PNR_DEVICES[device], s.manifest, s.out
    res: dict[str, Any] = {"device": device, "family": dev.family, "clock_mhz": clock_mhz,
                           "seconds": {}}
    netlist = out / f"{dev.family}_netlist.json"
    synth = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp"}[dev.family]
    syn = s.yosys(f"yosys synth_{dev.family}", f"{dev.family}_synth", [
        f'{synth} -top {m["top"]} -json "{netlist}"',
        f'tee -q -o "{out / f"{dev.family}_stat.json"}" stat -json'])
    res["seconds"]["synth"] = syn.seconds
    if not syn.ok:
        return {**res, "ok": False, "errors": syn.errors}
    stat = json.loads((out / f"{dev.family}_stat.json").read_text())
    top_stat = next(v for k, v in stat["modules"].items() if _bare(k) == m["top"])
    res["io_bits"] = int(top_stat["num_port_bits"])
    res["synth_cells"] = {k: v for k, v in flat_cells(module_cells(stat), m["top"]).items()
                          if not k.startswith("$")}
    report_path = out / "nextpnr_report.json"
    args = [tool_path(f"nextpnr-{dev.family}"), *dev.args, "--json", str(netlist),
            "--freq", f"{clock_mhz:g}", "--timing-allow-fail", "--seed", "1",
            "--report", str(report_path), "--detailed-timing-report"]
    # ECP5 runs out of context: in a system the accelerator's ports meet on-chip logic, not
    # pins, and pad-to-register paths would otherwise set the Fmax. iCE40 has no such mode.
    res["out_of_context"] = dev.family == "ecp5"
    if res["out_of_context"]:
        args.append("--out-of-context")
    elif res["io_bits"] > dev.io_pins:
        reason = (f"the top has {res['io_bits']} port bits, more than the {dev.io_pins} "
                  f"pins of {device} (an ecp5 device runs out of context)")
        return {**res, "ok": True, "fits": False, "fit_reasons": [reason]}
    else:
        args.append("--pcf-allow-unconstrained")
    pnr = s.run(f"nextpnr-{dev.family}", args, "nextpnr.log")
    res["seconds"]["pnr"] = pnr.seconds
    if not keep_netlist:
        netlist.unlink(missing_ok=True)
    report = json.loads(report_path.read_text()) if pnr.ok and report_path.exists() else None
    if report:  # the per-net timing table only serves critical_path(); it is large
        report.pop("detailed_net_timings", None)
        write_json(report_path, report)
    res.update(pnr_summary((out / "nextpnr.log").read_text(errors="replace"), report, s.cwd))
    # a nextpnr error other than a timeout is taken as "does not fit", with its ERROR lines
    res["ok"] = not pnr.timed_out
    if pnr.timed_out:
        res.update(fits=None, errors=pnr.errors)
    else:
        res["fit_reasons"] = res["over_capacity"] + ([] if pnr.ok else pnr.errors)
        res["fits"] = not res["fit_reasons"]
    if res["fmax_mhz"] is not None:
        res["timing_met"] = res["fmax_mhz"] >= clock_mhz
    return res


def synthesize(build_dir: Path, device: str = DEFAULT_DEVICE, part: str = DEFAULT_PART,
               clock_mhz: float = 100.0, pnr: bool = True,
               timeout: float | None = DEFAULT_TIMEOUT, keep_netlist: bool = False
               ) -> dict[str, Any]:
    """Run the synthesis report of build_dir's RTL; writes build_dir/synth/ and synth.json.

    Tool failures are recorded (result["ok"] False, result["errors"]) rather than raised,
    so that the logs stay on disk for a look; a design that does not fit is not an error.
    """
    build_dir = Path(build_dir).resolve()
    if device not in PNR_DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(PNR_DEVICES)}")
    if part not in XILINX_PARTS:
        raise ValueError(f"unknown part {part!r}; choose from {', '.join(XILINX_PARTS)}")
    m = read_manifest(build_dir)
    mem_dirs = {Path(f).parent for f in m["mem_files"]}
    cwd = mem_dirs.pop() if len(mem_dirs) == 1 else build_dir / "rtl"
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
            xilinx = pool.submit(_xilinx, s, part)
            placed = pool.submit(_pnr, s, device, clock_mhz, keep_netlist) if pnr else None
            flat = pool.submit(_xilinx_flat, s, part)
            result["xilinx"] = xilinx.result()
            if placed:
                result["pnr"] = placed.result()
            f = flat.result()
        result["xilinx"]["seconds"]["flat"] = f.pop("flat_seconds")
        result["xilinx"].update(f)
        finish(result, m)
        result["seconds"] = round(time.monotonic() - t0, 1)
        write_text(out / "summary.txt", summary_text(result))

    replace_dir(build_dir / "synth", build)
    write_json(build_dir / "synth.json", result)
    return result


def finish(result: dict[str, Any], m: dict[str, Any]) -> None:
    """Overall ok / fits / errors, and the throughput the Fmax gives."""
    parts = [result["xilinx"], *([result["pnr"]] if "pnr" in result else [])]
    result["ok"] = all(p.get("ok") for p in parts)
    result["errors"] = [e for p in parts for e in p.get("errors", [])]
    reasons = [r for p in parts for r in p.get("fit_reasons", [])]
    fits = [p.get("fits") for p in parts]
    result["fits"] = False if False in fits else (None if None in fits else True)
    result["fit_reasons"] = reasons
    ii = m.get("expected", {}).get("initiation_interval")
    fmax = result.get("pnr", {}).get("fmax_mhz")
    if ii and fmax:
        result["throughput_fps_at_fmax"] = round(fmax * 1e6 / ii, 1)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def summary_text(r: dict[str, Any]) -> str:
    x = r["xilinx"]
    lines = [f"qflow synth: {r['top']}  ({r['build_dir']})", ""]
    if x.get("total"):
        t = x["total"]
        lines += [
            f"Yosys synth_xilinx ({x['family']}, hierarchy kept), capacity of {x['part']}:",
            f"  LUT  {t['lut']:>8}  (logic {t['lut_logic']}, as memory {t['lut_as_memory']})"
            f"  / {x['capacity']['lut']}",
            f"  FF   {t['ff']:>8}  / {x['capacity']['ff']}",
            f"  BRAM {t['bram36']:>8g}  BRAM36 tiles (= {t['bram18']} x 18K) "
            f"/ {x['capacity']['bram36']}",
            f"  DSP  {t['dsp']:>8}  / {x['capacity']['dsp']}",
            f"  CARRY4 {t['carry4']}, MUXF7 {t['muxf7']}, MUXF8 {t['muxf8']}",
        ]
        if x.get("flat_total"):
            f = x["flat_total"]
            lines.append(f"  (flattened run: LUT {f['lut']}, FF {f['ff']}, BRAM36 {f['bram36']:g}"
                         f", DSP {f['dsp']})")
        elif x.get("flat_errors"):
            lines.append(f"  (flattened run failed: {x['flat_errors'][0]})")
    if x.get("layers"):
        lines += ["", "Per layer:",
                  f"  {'layer':<12}{'PE':>4}{'SIMD':>6}{'cycles':>8}{'LUT':>8}{'FF':>8}"
                  f"{'BRAM36':>8}{'DSP':>5}"]
        for row in x["layers"]:
            lines.append(f"  {_fmt(row['name']):<12}{_fmt(row['pe']):>4}{_fmt(row['simd']):>6}"
                         f"{_fmt(row['cycles']):>8}{_fmt(row.get('lut')):>8}"
                         f"{_fmt(row.get('ff')):>8}{_fmt(row.get('bram36')):>8}"
                         f"{_fmt(row.get('dsp')):>5}  {row.get('error', '')}".rstrip())
        o = x["other"]
        lines.append(f"  {'other':<12}{'':>18}{_fmt(o['lut']):>8}{_fmt(o['ff']):>8}"
                     f"{_fmt(o['bram36']):>8}{_fmt(o['dsp']):>5}")
    p = r.get("pnr")
    if p:
        lines += ["", f"nextpnr-{p['family']} on {p['device']}, target {p['clock_mhz']:g} MHz"
                  + (", out of context (ports not on pins)" if p.get("out_of_context") else "")
                  + ":"]
        for clk, f in p.get("fmax", {}).items():
            lines.append(f"  Fmax {f['achieved']:.2f} MHz on clock {clk}")
        u = p.get("utilization", {})
        keys = [k for k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D", "TRELLIS_IO",
                            "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "SB_IO") if k in u]
        lines += [f"  {k:<13}{u[k]['used']:>7} / {u[k]['available']}" for k in keys]
        cp = p.get("critical_path")
        if cp:
            lines += [f"  critical path {cp['delay_ns']} ns ({cp['logic_levels']} logic levels, "
                      f"routing {cp['routing_ns']} ns): {cp['start_cell']} -> {cp['end_cell']}"]
            if cp["rtl_sources"]:  # none when the path runs through Yosys' cells only
                lines.append(f"    RTL: {', '.join(cp['rtl_sources'][:6])}")
    if r.get("throughput_fps_at_fmax"):
        lines.append(f"  throughput at Fmax: {r['throughput_fps_at_fmax']:g} frames/s "
                     f"(II {r['expected'].get('initiation_interval')} cycles)")
    fits = {True: "yes", False: "NO", None: "unknown"}[r["fits"]]
    lines += ["", f"fits: {fits}" + "".join(f"\n  {s}" for s in r["fit_reasons"])]
    lines += [f"error: {e}" for e in r["errors"]]
    lines.append(f"time: {r.get('seconds', 0):g} s; logs and scripts in "
                 f"{Path(r['build_dir']) / 'synth'}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# command line


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
    s.add_argument("--clock-mhz", type=float, default=100.0, help="nextpnr target clock")
    s.add_argument("--no-pnr", action="store_true", help="Yosys counts only, no nextpnr")
    s.add_argument("--require-fit", action="store_true",
                   help="exit 1 unless the design fits the part and the device")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds per tool run, 0 for none (default {DEFAULT_TIMEOUT:g})")
    s.add_argument("--keep-netlist", action="store_true",
                   help="keep the place-and-route netlist JSON in synth/")
    s.set_defaults(func=cmd_synth)
