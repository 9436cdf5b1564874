"""The figures synth.json keeps (overall ok, fit, throughput) and summary.txt's text."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
        if p.get("dp16kd_regmode"):  # OUTREG: the word leaves the block's own register
            lines.append("  DP16KD output register: " + ", ".join(
                f"{mode} {n}" for mode, n in p["dp16kd_regmode"].items()))
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

