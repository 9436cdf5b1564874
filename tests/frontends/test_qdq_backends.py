"""A model quantized by onnxruntime, compiled with `qflow compile` and taken through every
check (verify against onnxruntime and qonnx's executor, RTL simulation, HLS C simulation,
firmware on the host and on RV32): each equal to the golden model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flow.check import check_build
from flow.export import compile_onnx
from flow.reference import QDQ_FILE, QONNX_FILE
from tests.helpers.qdq import qdq_model

DIGITS = {"name": "digits"}


def _compiled(tmp_path: Path, arch: str, per_channel: bool, activations: str) -> Path:
    path = qdq_model(tmp_path, arch, per_channel, activations)
    build = tmp_path / "build"
    compile_onnx(path, build, {}, DIGITS)
    # the file as given (onnxruntime's reference) and the QONNX form lowered from it
    assert (build / QDQ_FILE).read_bytes() == path.read_bytes()
    assert (build / QONNX_FILE).is_file()
    return build


def _every_check_equal(build: Path, limit: int) -> None:
    outcome = check_build(build, limit=limit)
    status = {k: o["status"] for k, o in outcome.items()}
    assert status.pop("verify") in ("equal", "explained")
    assert status == {"sim": "equal", "hls": "equal", "firmware": "equal"}
    verify = json.loads((build / "verify.subset.json").read_text())
    assert set(verify["agreement"]) == {"qonnx_executor", "onnxruntime"}
    for reference in verify["agreement"].values():
        # a difference from the float graph only where the IR declares a layer inexact (a
        # float32 sum at a step's edge)
        assert reference["equal"] == reference["total"] or reference["explained"]
        assert reference["equal"] >= 0.95 * reference["total"]
    firmware = json.loads((build / "firmware.subset.json").read_text())
    assert set(firmware["agreement"]) >= {"host", "rv32"}


def test_per_channel_int8_cnn_on_every_backend(tmp_path: Path) -> None:
    _every_check_equal(_compiled(tmp_path, "cnn", True, "QInt8"), limit=48)


def test_mobilenet_block_on_every_backend(tmp_path: Path) -> None:
    """Stride 2, ReLU6 (removed by onnxruntime: the zero point's clamp), depthwise and
    pointwise convolutions, a global average pool into its quantizer, a dense head."""
    _every_check_equal(_compiled(tmp_path, "mobile", True, "QUInt8"), limit=48)


@pytest.mark.slow
@pytest.mark.parametrize("arch,per_channel,activations", [
    ("mlp", False, "QUInt8"), ("mlp", True, "QInt8"), ("cnn", False, "QUInt8"),
    ("mobile", False, "QInt8")])
def test_more_qdq_models_on_every_backend(tmp_path: Path, arch: str, per_channel: bool,
                                          activations: str) -> None:
    _every_check_equal(_compiled(tmp_path, arch, per_channel, activations), limit=96)


def test_residual_block_of_onnxruntime(tmp_path: Path) -> None:
    """A float residual block quantized by onnxruntime (its branches' scales calibrated
    apart, the add's alignment approximate and declared): the firmware equals golden on
    the host and RV32; a backend that does not build the add yet is skipped with why."""
    build = _compiled(tmp_path, "residual", True, "QUInt8")
    outcome = check_build(build, limit=48)
    assert outcome["verify"]["status"] in ("equal", "explained")
    assert outcome["firmware"]["status"] == "equal"
    for name in ("sim", "hls"):
        o = outcome[name]
        assert o["status"] == "equal" or (o["status"] == "skipped" and "add" in o["reason"])
