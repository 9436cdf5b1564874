"""End to end on the default config: `make train export synth` (the main job, in CI)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from flow.buildfolder import OUTPUTS, mark
from tests.conftest import ROOT


def test_make_train_export_synth(tmp_path: Path) -> None:
    build = tmp_path / "digits"
    r = subprocess.run(["make", "-C", str(ROOT), "train", "export", "synth",
                        f"BUILD={build}"], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train = json.loads((build / "train.json").read_text())
    assert train["test_accuracy"] > 0.85 and len(train["epochs"]) == 30
    assert train["float_test_accuracy"] > train["test_accuracy"] - 0.1
    verify = json.loads((build / "verify.json").read_text())
    assert verify["samples"] == 360 and verify["all_equal"], verify["agreement"]
    checks = json.loads((build / "check.json").read_text())["checks"]
    assert {n: c["status"] for n, c in checks.items()} == {
        "verify": "equal", "sim": "equal", "hls": "equal", "firmware": "equal"}
    for f, outputs in (("sim.json", {"rtl"}), ("hls.json", {"hls"}),
                       ("firmware.json", {"host", "rv32"})):
        doc = json.loads((build / f).read_text())
        assert doc["samples"] == 360 and set(doc["agreement"]) == outputs and doc["all_equal"]
    report = (build / "report.md").read_text()
    summary = report[:report.index("## Accuracy")]
    assert summary.count("360 / 360 | equal") == 6, summary  # every execution, every sample
    assert verify["accuracy"]["golden"] == train["test_accuracy"]
    for f in ("checkpoint.pt", "model.qonnx.onnx", "ir.json", "ir.npz", "config.yaml",
              "report.md", "synth/summary.txt"):
        assert (build / f).is_file(), f
    assert {p.name for p in build.iterdir()} <= OUTPUTS  # the main job writes only qflow's names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]  # and leaves nothing beside
    # synthesis: Yosys counts per layer, placed and routed on ECP5 at the default 100 MHz
    synth = json.loads((build / "synth.json").read_text())
    assert synth["ok"] and synth["fits"], synth["errors"]
    assert [row["name"] for row in synth["xilinx"]["layers"]] == ["dense0", "dense1", "dense2"]
    assert synth["xilinx"]["total"]["lut"] > 0 and synth["pnr"]["timing_met"], synth["pnr"]


def test_resume_continues_from_checkpoint(digits_build: Path, tmp_path: Path) -> None:
    from flow.train.trainer import train

    hist = json.loads((digits_build / "train.json").read_text())["epochs"]
    cfg = (digits_build / "config.yaml").read_text().replace("epochs: 3", "epochs: 4")
    (tmp_path / "c.yaml").write_text(cfg)
    build = tmp_path / "b"
    build.mkdir()
    mark(build)
    (build / "checkpoint.pt").write_bytes((digits_build / "checkpoint.pt").read_bytes())
    r = train(tmp_path / "c.yaml", build, resume=True)
    assert [e["epoch"] for e in r["epochs"]] == [1, 2, 3, 4]
    assert r["epochs"][:3] == hist
    assert np.isfinite(r["epochs"][3]["loss"])


def test_ptq_build_agrees_on_integers(tmp_path: Path) -> None:
    """Post-training quantization (float twin + calibration) through export and verify."""
    import yaml

    from flow.export import export_build
    from flow.train.trainer import train
    from flow.verify import verify

    cfg = {"name": "ptq_w4a4", "data": {"name": "digits"},
           "model": {"hidden": [32], "input": {"quant": "uint", "bits": 8, "max_val": 1.0},
                     "weight": {"quant": "int", "bits": 4, "per_channel": True},
                     "act": {"quant": "uint", "bits": 4}},
           "train": {"epochs": 4, "mode": "ptq"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = train(tmp_path / "c.yaml", tmp_path / "b")
    assert r["test_accuracy"] > 0.8 and r["float_test_accuracy"] > 0.8
    export_build(tmp_path / "b")
    v = verify(tmp_path / "b", limit=100)
    assert v["all_equal"], v["agreement"]
    assert set(v["agreement"]) >= {"qonnx_executor", "brevitas_forward"}


def test_cnn_train_export_verify_firmware(tmp_path: Path) -> None:
    """The small CNN config through training, export and every check that builds CNNs:
    qonnx's executor, Brevitas' forward (integers at every layer, channel-last) and the
    firmware on the host and on RV32IMC."""
    import yaml

    from flow.export import export_build
    from flow.train.trainer import train
    from flow.verify import verify

    cfg = yaml.safe_load((ROOT / "configs" / "digits_cnn_w1a1.yaml").read_text())
    cfg["train"]["epochs"] = 3
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = train(tmp_path / "c.yaml", tmp_path / "b")
    assert r["test_accuracy"] > 0.5
    model = export_build(tmp_path / "b")
    assert [layer.kind for layer in model.layers] == ["conv2d", "maxpool", "conv2d", "dense",
                                                     "dense"]
    v = verify(tmp_path / "b", limit=60, backend_names=["firmware", "firmware-rv32"])
    assert v["all_equal"], v["agreement"]
    assert set(v["agreement"]) == {"qonnx_executor", "brevitas_forward", "firmware",
                                   "firmware-rv32"}
