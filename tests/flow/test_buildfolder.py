"""A build folder is qflow's beyond doubt: qflow never writes into, deletes or replaces a
folder it did not make (a project, a model's folder, ".", "..", the root), nor a build
holding a user's file or a marker it did not write, and each refusal is one line naming
the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from flow.buildfolder import MARKER, mark
from flow.cli import main
from tests.conftest import ROOT
from tests.helpers.buildfolder import hidden, snapshot


def _config(folder: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["model"]["hidden"] = [16]
    cfg["train"].update(epochs=1, float_baseline=False)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# ---- 1, 4: never a user's folder ---------------------------------------------------------

def test_train_into_the_configs_own_folder_keeps_every_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "thesis.txt").write_text("two years")
    (proj / "src" / "main.py").write_text("print('mine')")
    config = _config(proj)
    before = snapshot(proj)
    for out in (proj, proj / "."):
        assert main(["train", str(config), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "'config.yaml', 'src', 'thesis.txt' and is not a qflow build" in err, err
    assert snapshot(proj) == before and hidden(tmp_path) == []


def test_compile_into_the_models_folder_keeps_every_file(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(build / "model.qonnx.onnx", models / "model.qonnx.onnx")
    (models / "notes.md").write_text("which model is which")
    before = snapshot(models)
    assert main(["compile", str(models / "model.qonnx.onnx"), "--out", str(models)]) == 2
    assert "holds 'model.qonnx.onnx', 'notes.md' and is not a qflow build" in capsys.readouterr().err
    assert snapshot(models) == before


def test_a_build_holding_a_users_file_is_not_replaced(
        build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (build / "my_notes.txt").write_text("keep me")
    before = snapshot(build)
    assert main(["export", str(build)]) == 2
    assert "also holds 'my_notes.txt', which qflow did not write" in capsys.readouterr().err
    assert snapshot(build) == before


@pytest.mark.parametrize("argv", [["report", "{dir}"], ["verify", "{dir}", "--limit", "3"],
                                  ["sweep", "{config}", "--out", "{dir}", "--quick"]])
def test_result_commands_write_only_into_builds(
        argv: list[str], build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
        ) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "report.md").write_text("my own report")
    (mine / "sweep.png").write_bytes(b"my own plot")
    for f in ("ir.json", "ir.npz"):  # even with an IR in it
        shutil.copy(build / f, mine / f)
    before = snapshot(mine)
    args = [a.format(dir=mine, config=_config(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not a qflow build" in err or "not a qflow build folder" in err, err
    assert snapshot(mine) == before


def test_a_build_of_an_older_qflow_is_named(build: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    (build / MARKER).unlink()
    assert main(["verify", str(build), "--limit", "3"]) == 2
    assert f"{build}: not a qflow build folder (no {MARKER} marker)" in capsys.readouterr().err


def test_a_dangling_link_the_root_and_long_names_are_refused(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx = str(build / "model.qonnx.onnx")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    cases = {str(tmp_path / "dangling"): "a symbolic link to", "/": "the root folder",
             str(tmp_path / ("n" * 240)): "a name of 240 bytes"}
    for out, message in cases.items():
        assert main(["compile", onnx, "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_dot_and_dotdot_name_the_folders_they_are(
        build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    inner = tmp_path / "work" / "inner"
    inner.mkdir(parents=True)
    (inner / "data.csv").write_text("1,2")
    monkeypatch.chdir(inner)
    onnx = str(build / "model.qonnx.onnx")
    assert main(["compile", onnx, "--out", "."]) == 2
    assert f"{inner}: holds 'data.csv'" in capsys.readouterr().err
    assert main(["compile", onnx, "--out", ".."]) == 2
    assert f"{inner.parent}: holds 'inner'" in capsys.readouterr().err
    assert (inner / "data.csv").read_text() == "1,2"


def test_links_planted_in_a_build_are_refused(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `figures` link to the user's folder: the report would write its plots there."""
    mine = tmp_path / "my_figures"
    mine.mkdir()
    (mine / "accuracy.png").write_bytes(b"my own plot")
    (build / "figures").symlink_to(mine)
    assert main(["report", str(build)]) == 2
    assert "holds symbolic links ('figures')" in capsys.readouterr().err
    assert (mine / "accuracy.png").read_bytes() == b"my own plot"


@pytest.mark.parametrize("marker", ["link", "other schema", "not json"])
def test_only_a_real_marker_makes_a_build(marker: str, compiled: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    build = compiled
    (build / MARKER).unlink()
    if marker == "link":  # another build's marker, linked in
        other = tmp_path / "other"
        other.mkdir()
        mark(other)
        (build / MARKER).symlink_to(other / MARKER)
    else:
        (build / MARKER).write_text('{"schema": "qflow.build/99"}' if marker == "other schema"
                                    else "\x00\x01")
    (build / "mine.txt").write_text("precious")
    assert main(["compile", str(build / "model.qonnx.onnx"), "--out", str(build)]) == 2
    assert "is not a qflow build" in capsys.readouterr().err
    assert (build / "mine.txt").read_text() == "precious"


def test_an_existing_file_or_a_file_as_parent_is_one_line(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    onnx = str(build / "model.qonnx.onnx")
    assert main(["compile", onnx, "--out", str(tmp_path / "file")]) == 2
    assert "file: exists and is not a folder" in capsys.readouterr().err
    assert main(["compile", onnx, "--out", str(tmp_path / "file" / "b")]) == 2
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "x"


def test_a_users_folder_named_like_the_partial_one_is_kept(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`.b.partial` is where `qflow train` keeps an unfinished run: one qflow did not make
    (no marker) is refused, not emptied."""
    mine = tmp_path / ".b.partial"
    mine.mkdir()
    (mine / "draft.txt").write_text("mine")
    assert main(["train", str(_config(tmp_path)), "--out", str(tmp_path / "b")]) == 2
    assert ".b.partial: the folder `qflow train` keeps an unfinished run in, but qflow did " \
        "not make it" in capsys.readouterr().err
    assert (mine / "draft.txt").read_text() == "mine"
