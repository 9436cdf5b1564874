"""Hostile and careless use of the command line: arguments, input and output files,
checks without their tools, and builds in the way; each is refused with one clear line
naming the file or argument, before anything runs, and nothing of the user's is lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow.cli import main
from tests.helpers.backends import only_check


@pytest.fixture
def build(build: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/flow's private copy of the trained digits build (input (1, 8, 8)), the cwd its
    parent."""
    monkeypatch.chdir(build.parent)
    return build


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
    refused([command, "b", "--limit", limit], capsys, "argument --limit", limit,
            "must be a whole number of 1 or more" if limit != "x" else "not a whole number")
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


@pytest.mark.parametrize("argv", [["--backends", "nonsense"], ["--backends", "rtl,golden"],
                                  ["--seeds", "0"], ["--seeds", "-3"], ["--start", "-1"]])
def test_fuzz_refuses_bad_arguments_before_drawing(argv: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from tests import fuzz

    with pytest.raises(SystemExit) as e:
        fuzz.main([*argv, "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}" in err, err
    assert not any(tmp_path.iterdir())


def test_check_without_the_rv32_tools_runs_the_host_part(
        build: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No RISC-V compiler or QEMU: the firmware check runs on the host, skips RV32 with the
    reason (firmware.json, the log), and check.json is written anew."""
    import json
    import logging

    from flow.backends.firmware import TARGETS, toolchain

    real_which = toolchain.shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in TARGETS["rv32"].tools else real_which(name)

    monkeypatch.setattr(toolchain.shutil, "which", which)
    only_check(monkeypatch, "firmware")
    (build / "check.subset.json").write_text('{"stale": true}\n')
    with caplog.at_level(logging.INFO, logger="qflow"):
        assert main(["check", "b", "--limit", "5"]) == 0
    outcome = json.loads((build / "check.subset.json").read_text())["checks"]
    assert outcome["firmware"]["status"] == "equal" and "stale" not in outcome
    fw = json.loads((build / "firmware.subset.json").read_text())
    assert fw["agreement"]["host"]["equal"] == 5 and "rv32" not in fw["agreement"]
    assert "riscv64-unknown-elf-gcc not found on PATH (apt-get install gcc-riscv64" in \
        fw["skipped"]["rv32"]
    assert fw["instructions_per_inference"] is None
    assert "firmware: rv32 skipped: riscv64-unknown-elf-gcc not found" in caplog.text


def test_run_outputs_path_is_checked_before_running(build: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    np.save("x.npy", np.zeros((2, 1, 8, 8), np.float32))
    Path("afile").write_text("mine\n")
    cases = {
        "afile/y.npy": "afile is not a folder",
        "nowhere/y.npy": "nowhere does not exist",
        "b/ir.npz": "inside the build folder b",
        "b/y.npy": "inside the build folder b",
        "x.npy": "is the --inputs file",
        "y" * 300 + ".npy": "File name too long",
    }
    ir = (build / "ir.npz").read_bytes()
    for out, message in cases.items():
        refused(["run", "b", "--inputs", "x.npy", "--outputs", out], capsys, f"{out[:40]}",
                message)
    assert (build / "ir.npz").read_bytes() == ir and Path("afile").read_text() == "mine\n"
    assert np.load("x.npy").shape == (2, 1, 8, 8)
    Path("ünï cødé").mkdir()
    assert main(["run", "b", "--inputs", "x.npy", "--outputs", "ünï cødé/y.npy"]) == 0
    assert np.load("ünï cødé/y.npy").shape == (2, 10)


def test_bad_input_files_are_refused_by_name(build: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    x = np.zeros((2, 1, 8, 8), np.float32)
    np.savez("x.npz", x=x)
    Path("empty.npy").write_bytes(b"")
    np.save("object.npy", np.array([{"a": 1}] * 2, dtype=object), allow_pickle=True)
    np.save("record.npy", np.zeros((2, 1, 8, 8), dtype=[("a", "f4")]))
    np.save("huge.npy", np.full((2, 1, 8, 8), 1e300))  # finite in float64, inf in float32
    Path("folder").mkdir()
    cases = {
        "x.npz": "a .npz archive (arrays: x); expected one .npy array",
        "empty.npy": "an empty file (0 bytes)",
        "object.npy": "Object arrays cannot be loaded when allow_pickle=False",
        "record.npy": "expected real numbers",
        "huge.npy": "inputs must be finite in float32",
        "folder": "is a folder; expected a .npy file",
        "/dev/zero": "not a regular file",
    }
    for name, message in cases.items():
        refused(["run", "b", "--inputs", name, "--outputs", "y.npy"], capsys, name, message)
    assert not Path("y.npy").exists()
    np.save("bool.npy", np.ones((2, 1, 8, 8), bool))  # taken as the values 0 and 1
    assert main(["run", "b", "--inputs", "bool.npy", "--outputs", "y.npy"]) == 0


def test_compile_does_not_replace_a_trained_build(build: Path, tfc_onnx: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = (build / "checkpoint.pt").read_bytes()
    refused(["compile", str(tfc_onnx), "--out", "b"], capsys, "b: holds a trained model",
            "checkpoint.pt")
    assert (build / "checkpoint.pt").read_bytes() == checkpoint
    refused(["compile", str(build), "--out", "o"], capsys, f"{build}: no such file (a folder)")


def test_verify_names_an_unknown_backend_before_running(
        digits_build: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from flow import verify

    monkeypatch.setattr(verify, "verify", lambda *a: pytest.fail("ran before refusing"))
    assert main(["verify", str(digits_build), "--backends", "hls,nonsense"]) == 2
    assert "--backends: unknown nonsense; choose from golden" in capsys.readouterr().err
