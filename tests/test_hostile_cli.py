"""Hostile and careless inputs to the command line, input files, ONNX files and the IR:
each is refused with one clear line naming the file, node, layer or argument, before
anything runs, and nothing of the user's is lost or executed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from flow.cli import main


@pytest.fixture
def build(digits_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the trained digits build (input (1, 8, 8)), the cwd its parent."""
    shutil.copytree(digits_build, tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "b"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *parts: str) -> str:
    """main(argv) fails with exit 2 and one message holding every part."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's refusal
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    for part in parts:
        assert part in err, err
    return err


def test_inputs_in_another_layout_are_refused(build: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32) * 16
    np.save("hwc.npy", x.transpose(0, 2, 3, 1))  # the same 64 values per sample
    np.save("flat.npy", x.reshape(20, 64))
    np.save("one.npy", x[0])
    for args in (["verify", "b", "--strict"], ["run", "b", "--outputs", "y.npy"],
                 ["firmware", "b"]):
        refused([*args, "--inputs", "hwc.npy"], capsys, "hwc.npy", "(20, 8, 8, 1)",
                "[N, 1, 8, 8]", "channels first")
    refused(["run", "b", "--inputs", "flat.npy", "--outputs", "y.npy"], capsys, "flat.npy",
            "(20, 64)", "the model takes (1, 8, 8)")
    refused(["run", "b", "--inputs", "one.npy", "--outputs", "y.npy"], capsys, "one.npy",
            "without the batch axis")
    assert not Path("y.npy").exists()
    from flow.inputs import InputError
    from flow.verify import verify

    with pytest.raises(InputError, match=r"\(8, 8, 1\)"):
        verify(build, x=x.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("command", ["verify", "check", "sim", "hls", "firmware"])
@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_non_positive_limit_is_refused_by_the_parser(
        build: Path, command: str, limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    refused([command, "b", "--limit", limit], capsys, "argument --limit", limit)
    assert not (build / f"{command}.json").exists() and not (build / "verify.json").exists()


def test_non_positive_limit_is_refused_by_the_library(build: Path) -> None:
    from flow.backends.check import run_check
    from flow.check import check_build
    from flow.inputs import InputError, command_codes
    from flow.ir import load
    from flow.verify import verify

    model = load(build)
    for limit in (0, -1):
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            verify(build, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            check_build(build, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            command_codes(model, None, limit)
        with pytest.raises(InputError, match=f"limit {limit}: expected a positive"):
            run_check("sim", build, None, limit, lambda *a: ({}, {}))
    assert len(command_codes(model, None, 3)) == 3


@pytest.mark.parametrize(("option", "value"), [
    ("--target-cycles", "0"), ("--target-cycles", "-5"), ("--target-fps", "0"),
    ("--target-fps", "nan"), ("--target-fps", "inf"), ("--target-fps", "-1"),
    ("--clock-mhz", "0"), ("--clock-mhz", "nan")])
def test_folding_targets_must_be_positive_and_finite(
        tfc_onnx: Path, tmp_path: Path, option: str, value: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    refused(["compile", str(tfc_onnx), "--out", str(tmp_path / "o"), option, value], capsys,
            f"argument {option}", value)
    assert not (tmp_path / "o").exists()


def test_cycles_for_fps_refuses_nan_and_inf() -> None:
    from flow.folding import cycles_for_fps

    for fps, clock in ((float("nan"), 100.0), (float("inf"), 100.0), (30.0, float("inf"))):
        with pytest.raises(ValueError, match="positive and finite"):
            cycles_for_fps(fps, clock)
