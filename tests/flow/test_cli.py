"""The `qflow` command line: the run contract, compile of third-party QONNX, verify, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flow.cli import main
from flow.reference import qonnx_outputs


@pytest.fixture(scope="module")
def tfc_compiled(tfc_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tfc_compiled")
    assert main(["compile", str(tfc_onnx), "--out", str(out), "--target-cycles", "64"]) == 0
    return out


def test_compile_writes_ir_and_onnx(tfc_compiled: Path) -> None:
    doc = json.loads((tfc_compiled / "ir.json").read_text())
    assert doc["schema"] == "qflow.ir/3" and len(doc["layers"]) == 4
    assert (tfc_compiled / "model.qonnx.onnx").is_file()
    assert doc["initiation_interval"] <= 64
    assert not list(tfc_compiled.glob(".*.tmp"))


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_run_golden_matches_executor(tfc_compiled: Path, tmp_path: Path, batch: int) -> None:
    x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tfc_compiled), "--backend", "golden", "--inputs",
                 str(tmp_path / "x.npy"), "--outputs", str(tmp_path / "y")]) == 0
    y = np.load(tmp_path / "y")
    assert y.shape == (batch, 10)
    assert np.array_equal(y, qonnx_outputs(tfc_compiled / "model.qonnx.onnx", x))


def test_verify_counts_every_sample(tfc_compiled: Path) -> None:
    from flow.verify import verify

    x = np.random.default_rng(5).random((30, 1, 28, 28), dtype=np.float32)
    r = verify(tfc_compiled, x=x)
    a = r["agreement"]["qonnx_executor"]
    assert a["equal"] == a["total"] == 30 and r["all_equal"]
    assert json.loads((tfc_compiled / "verify.subset.json").read_text())["samples"] == 30


def test_run_errors_are_clear(tfc_compiled: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    assert main(["run", str(tfc_compiled), "--inputs", str(tmp_path / "bad.npy"),
                 "--outputs", str(tmp_path / "y.npy")]) == 2
    assert "the model takes (1, 28, 28)" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()
    assert main(["run", str(tmp_path / "nowhere"), "--inputs", str(tmp_path / "bad.npy"),
                 "--outputs", str(tmp_path / "y.npy")]) == 2
    assert "nowhere: no such build folder" in capsys.readouterr().err


def test_train_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nmodel: {weight: {quant: fp4}}\ntrain: {epochs: 1}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "b")]) == 2
    assert "c.yaml:2: model.weight: quant: 'fp4' is not one of" in capsys.readouterr().err
    cfg.write_text("name: x\ntrian: {epochs: 1}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "b")]) == 2
    assert "c.yaml:2: trian: unknown key" in capsys.readouterr().err
