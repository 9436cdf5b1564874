"""`qflow report` from partial and full builds, and a `qflow sweep` smoke test on digits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from flow.buildfolder import mark
from flow.cli import parser
from flow.fingerprint import model_fingerprint
from flow.ir import load
from flow.report import report
from flow.report.sweep import parse_bits
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def small_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config, build folder): the default config, 1 float + 1 QAT epoch, lowered to the IR."""
    import torch

    from flow.export import export_qonnx
    from flow.lower import lower
    from flow.train.trainer import load_trained, train

    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["train"].update(epochs=1, float_epochs=1, float_baseline=True)
    folder = tmp_path_factory.mktemp("report")
    config = folder / "digits_w1a1.yaml"
    config.write_text(yaml.safe_dump(cfg))
    build = folder / "build"
    train(config, build)
    model, _, ds = load_trained(build)
    onnx_path = export_qonnx(model, torch.from_numpy(ds.x_test[:1]), build / "model.qonnx.onnx")
    lower(onnx_path, name="digits_w1a1").save(build)
    return config, build


def stamped(path: Path, doc: dict[str, object]) -> None:
    """Write a result file as the build's own IR's (another IR's would be stale)."""
    path.write_text(json.dumps({**doc, "ir_fingerprint": model_fingerprint(load(path.parent))}))


def partial(src: Path, dst: Path, files: tuple[str, ...]) -> Path:
    dst.mkdir()
    mark(dst)
    for f in files:
        shutil.copy(src / f, dst / f)
    return dst


def test_report_from_ir_only(small_build: tuple[Path, Path], tmp_path: Path) -> None:
    d = partial(small_build[1], tmp_path / "b", ("ir.json", "ir.npz"))
    text = report(d).read_text()
    assert "### quantized" in text and "xnor-popcount" in text
    assert (d / "figures" / "energy.png").stat().st_size > 0
    for needed in ("train.json (missing)", "sweep.json (missing)", "checkpoint.pt",
                   "verify.json (missing)", "synth.json (missing)"):
        assert needed in text
    assert "qflow train CONFIG" in text and "qflow verify" in text
    cost = json.loads((d / "analysis.json").read_text())["cost"]
    assert f"{cost['quantized']['total']['total_pj']:.6g}" in text  # read, not typed


def test_report_from_train_json_only(small_build: tuple[Path, Path], tmp_path: Path) -> None:
    d = partial(small_build[1], tmp_path / "b", ("train.json",))
    text = report(d).read_text()
    acc = json.loads((d / "train.json").read_text())
    assert f"{acc['test_accuracy']:.6g}" in text and f"{acc['float_test_accuracy']:.6g}" in text
    assert "ir.json" in text and "qflow export" in text
    assert (d / "figures" / "accuracy.png").is_file()
    assert not (d / "figures" / "energy.png").exists()


def test_sweep_smoke_and_full_report(small_build: tuple[Path, Path]) -> None:
    config, build = small_build
    a = parser().parse_args(["sweep", str(config), "--out", str(build), "--bits", "1,4", "--quick"])
    a.func(a)
    sw = json.loads((build / "sweep.json").read_text())
    assert [(q["bits"], q["granularity"]) for q in sw["ptq"]] == [
        (1, "per_tensor"), (1, "per_channel"), (4, "per_tensor"), (4, "per_channel")]
    assert all(0.0 <= q["test_accuracy"] <= 1.0 for q in sw["ptq"])
    assert sw["float"]["reused_checkpoint"]  # `train` left a finished float baseline
    assert sw["qat"]["weight_bits"] == 1 and sw["qat"]["act_bits"] == 1
    t8 = sw["torch_int8"]
    assert t8["engine"] in ("fbgemm", "qnnpack")
    assert t8["static_int8"]["state_dict_bytes"] < t8["float32"]["state_dict_bytes"]
    assert (build / "sweep.png").stat().st_size > 0

    # other stages' results, with keys the report has never seen
    fp = model_fingerprint(load(build))  # results of this IR (another IR's would be stale)
    (build / "verify.json").write_text(json.dumps({
        "ir_fingerprint": fp, "samples": 360, "all_equal": True, "accuracy": {"golden": 0.9125},
        "agreement": {"qonnx_executor": {"equal": 360, "total": 360, "differing_samples": []},
                      "rtl": {"equal": 359, "total": 360, "new_metric": 7.25}}}))
    (build / "synth.json").write_text(json.dumps({
        "targets": [{"arch": "xilinx", "LUT": 123457, "FF": 98765},
                    {"arch": "ice40", "fmax_mhz": 87.125, "extra": {"carry": 4242}}],
        "nested": {"deeper": {"cells": 31337}}, "tool": "yosys", "ir_fingerprint": fp}))
    (build / "firmware.json").write_text("{not json")
    a = parser().parse_args(["report", str(build)])
    a.func(a)
    text = (build / "report.md").read_text()
    for number in ("0.9125", "359", "7.25", "123457", "98765", "87.125", "4242", "31337"):
        assert number in text
    assert "firmware.json (unreadable" in text and "sim.json (missing)" in text
    assert "SQNR per layer" in text and "Brevitas PTQ" in text and "torch.ao" in text
    for fig in ("accuracy", "sweep", "sqnr", "energy"):
        assert f"figures/{fig}.png" in text and (build / "figures" / f"{fig}.png").is_file()
    sqnr = json.loads((build / "analysis.json").read_text())["sqnr"]["tensors"]
    assert [(r["layer"], r["tensor"]) for r in sqnr][:3] == [
        ("input", "input"), ("dense0", "weight"), ("dense0", "activation")]


def test_parse_bits() -> None:
    assert parse_bits("1..8") == list(range(1, 9))
    assert parse_bits("8,2,4") == [2, 4, 8]
    for bad in ("0..3", "9", "a,b"):
        with pytest.raises(ValueError):
            parse_bits(bad)


def test_summary_leads_with_every_check(small_build: tuple[Path, Path], tmp_path: Path) -> None:
    """The first screen: accuracy, the agreement matrix (equal, differing, skipped, not run),
    hardware and throughput, firmware and energy, each read from the build's files."""
    d = partial(small_build[1], tmp_path / "b", ("ir.json", "ir.npz", "train.json"))
    agree = {"equal": 40, "total": 40, "differing_samples": []}
    stamped(d / "verify.json", {
        "samples": 40, "accuracy": {"golden": 0.925},
        "agreement": {"qonnx_executor": agree, "brevitas_forward": agree}})
    stamped(d / "sim.json", {
        "samples": 40, "agreement": {"rtl": {"equal": 39, "differing_samples": [7]}},
        "initiation_interval_cycles": 128, "latency_cycles": 344})
    stamped(d / "check.json", {"checks": {"hls": {"status": "skipped",
                                                  "reason": "no conv2d in hls yet"}}})
    stamped(d / "synth.json", {
        "xilinx": {"part": "xc7z020", "total": {"lut": 1546, "ff": 1169, "bram36": 1.5,
                                                "dsp": 0}},
        "pnr": {"device": "ecp5-85k", "family": "ecp5", "fmax_mhz": 128.0,
                "utilization": {"TRELLIS_COMB": {"used": 2714}, "TRELLIS_FF": {"used": 1277},
                                "DP16KD": {"used": 3}, "MULT18X18D": {"used": 0}}}})
    (d / "board" / "icebreaker").mkdir(parents=True)
    (d / "board" / "icebreaker" / "board.json").write_text(json.dumps({
        "board": "icebreaker", "board_title": "iCEBreaker", "device": "ice40-up5k",
        "clock_mhz": 12.0, "fmax_mhz": 41.5, "timing_met": True, "bitstream": "top.bin",
        "utilization": {"ICESTORM_LC": {"used": 4307}, "ICESTORM_RAM": {"used": 9},
                        "ICESTORM_DSP": {"used": 0}}}))
    text = report(d).read_text()
    summary = text[:text.index("## Accuracy")]
    assert "| board iCEBreaker (ice40-up5k) | 4307 | — | 9 | 0 | 41.5 |" in summary
    assert "icebreaker: 12.0 MHz board clock met, bitstream `board/icebreaker/top.bin`" in summary
    acc = json.loads((d / "train.json").read_text())
    assert f"{acc['test_accuracy']:.6g}" in summary and "| 0.925 |" in summary
    assert "| qonnx executor (float graph) | 40 / 40 | equal |" in summary
    assert "| RTL, cocotb + Verilator | 39 / 40 | DIFFERS: samples [7] |" in summary
    assert "| HLS C simulation | skipped | no conv2d in hls yet |" in summary
    assert "| firmware, host (ASan/UBSan) | not run | `qflow firmware" in summary
    assert "| Yosys synth_xilinx (xc7z020) | 1546 | 1169 | 1.5 | 0 | — |" in summary
    assert "| nextpnr ecp5-85k | 2714 | 1277 | 3 | 0 | 128 |" in summary
    assert "1,000,000 frames/s, latency 2.69 µs" in summary  # 128 MHz / 128 cycles; 344 cycles
    assert "**Energy** (45 nm model)" in summary
    assert text.index("## Appendix") > text.index("## Accuracy")
    assert text.index("### Per epoch: epochs") > text.index("## Appendix")


def test_summary_shows_the_requantization(small_build: tuple[Path, Path], tmp_path: Path) -> None:
    """A requantized build: the executor's differences are explained, not DIFFERS, and each
    requantized layer's measured difference and the argmax agreement are on the first screen."""
    d = partial(small_build[1], tmp_path / "b", ("ir.json", "ir.npz"))
    stamped(d / "verify.json", {
        "samples": 40, "accuracy": {"golden": 0.9, "qonnx_executor": 0.875},
        "agreement": {"qonnx_executor": {"equal": 31, "total": 40, "differing_samples": [3],
                                         "explained": True}},
        "requantization": {"samples": 40, "argmax_equal": 39, "layers": {
            "dense0": {"power_of_two": False, "max_step_difference": 1, "step_bound": 1,
                       "equal_samples": 30, "samples": 40, "equal_share": 0.75,
                       "differing_outputs": 12, "outputs": 1280},
            "dense1": {"power_of_two": True, "max_step_difference": 1, "step_bound": 1,
                       "equal_samples": 38, "samples": 40, "equal_share": 0.95,
                       "differing_outputs": 2, "outputs": 640, "tie_outputs": 1,
                       "double_rounding_outputs": 1}}}})
    summary = report(d).read_text()
    summary = summary[:summary.index("## Accuracy")]
    assert "| quantized, float graph by qonnx's executor (verify.json) | 0.875 |" in summary
    assert ("| qonnx executor (float graph) | 31 / 40 | explained: requantization and float32 "
            "rounding, measured (below) |") in summary
    assert "| dense0 | no | 1 (≤ 1) | 0.75 (30 / 40) | 12 / 1280 |" in summary
    assert ("| dense1 | yes | 1 (≤ 1) | 0.95 (38 / 40) | 2 / 640 (1 ties, 1 double rounding) |"
            in summary)
    assert "Argmax agreement with the float graph: 39 / 40 test samples." in summary
