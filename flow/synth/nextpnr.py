"""Place and route with nextpnr (ECP5 out of context, or iCE40 on its pins): the run, its
log and JSON report parsed for Fmax, utilisation and the critical path."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flow.atomic import write_json
from flow.synth.tools import Session, tool_path
from flow.synth.yosys import bare_name, flat_cells, module_cells


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


def dp16kd_regmodes(netlist: dict[str, Any]) -> dict[str, int]:
    """DP16KD blocks of a Yosys JSON netlist by output register mode ("OUTREG": the word
    leaves the block's own register; "NOREG": the array's clock-to-out reaches the fabric)."""
    modes: dict[str, int] = {}
    for module in netlist["modules"].values():
        for cell in module["cells"].values():
            if cell["type"] == "DP16KD":
                mode = str(cell["parameters"].get("REGMODE_A", "NOREG"))
                modes[mode] = modes.get(mode, 0) + 1
    return dict(sorted(modes.items()))


def place_and_route(s: Session, device: str, clock_mhz: float, keep_netlist: bool) -> dict[str, Any]:
    dev, m, out = PNR_DEVICES[device], s.manifest, s.out
    res: dict[str, Any] = {"device": device, "family": dev.family, "clock_mhz": clock_mhz,
                           "seconds": {}}
    netlist = out / f"{dev.family}_netlist.json"
    synth = {"ecp5": "synth_ecp5", "ice40": "synth_ice40 -dsp"}[dev.family]
    # on ECP5, block ROMs and line buffers are DP16KD instances with their output register
    # (rtl/vendor/ecp5/, copied to the build's rtl/ecp5/: the manifest's ecp5_sources)
    syn = s.yosys(f"yosys synth_{dev.family}", f"{dev.family}_synth", [
        f'{synth} -top {m["top"]} -json "{netlist}"',
        f'tee -q -o "{out / f"{dev.family}_stat.json"}" stat -json'], ecp5=dev.family == "ecp5")
    res["seconds"]["synth"] = syn.seconds
    if not syn.ok:
        return {**res, "ok": False, "errors": syn.errors}
    stat = json.loads((out / f"{dev.family}_stat.json").read_text())
    top_stat = next(v for k, v in stat["modules"].items() if bare_name(k) == m["top"])
    res["io_bits"] = int(top_stat["num_port_bits"])
    res["synth_cells"] = {k: v for k, v in flat_cells(module_cells(stat), m["top"]).items()
                          if not k.startswith("$")}
    if dev.family == "ecp5":
        res["dp16kd_regmode"] = dp16kd_regmodes(json.loads(netlist.read_text()))
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
