"""A build folder is qflow's beyond doubt: qflow never deletes or replaces what it did not
write, two commands never mix two models' outputs, an interrupted swap loses nothing, and
the OS's errors (read-only or full disk, names too long) are one line naming the file."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flow import buildfolder
from flow.buildfolder import MARKER, OUTPUTS, mark, writing
from flow.cli import main
from flow.train.trainer import TRAIN_FILES
from tests.conftest import ROOT


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def build(digits_build: Path, tmp_path: Path) -> Path:
    """A private copy of the exported default build."""
    return Path(shutil.copytree(digits_build, tmp_path / "b", symlinks=True))


@pytest.fixture
def compiled(build: Path) -> Path:
    """The same build as `qflow compile` leaves it (no training files: compile may replace it)."""
    for f in TRAIN_FILES:
        (build / f).unlink(missing_ok=True)
    return build


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
    before = _snapshot(proj)
    for out in (proj, proj / "."):
        assert main(["train", str(config), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "'config.yaml', 'src', 'thesis.txt' and is not a qflow build" in err, err
    assert _snapshot(proj) == before and _hidden(tmp_path) == []


def test_compile_into_the_models_folder_keeps_every_file(
        build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(build / "model.qonnx.onnx", models / "model.qonnx.onnx")
    (models / "notes.md").write_text("which model is which")
    before = _snapshot(models)
    assert main(["compile", str(models / "model.qonnx.onnx"), "--out", str(models)]) == 2
    assert "holds 'model.qonnx.onnx', 'notes.md' and is not a qflow build" in capsys.readouterr().err
    assert _snapshot(models) == before


def test_a_build_holding_a_users_file_is_not_replaced(
        build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (build / "my_notes.txt").write_text("keep me")
    before = _snapshot(build)
    assert main(["export", str(build)]) == 2
    assert "also holds 'my_notes.txt', which qflow did not write" in capsys.readouterr().err
    assert _snapshot(build) == before


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
    before = _snapshot(mine)
    args = [a.format(dir=mine, config=_config(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not a qflow build" in err or "not a qflow build folder" in err, err
    assert _snapshot(mine) == before


def test_a_build_of_an_older_qflow_is_named(build: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    (build / MARKER).unlink()
    assert main(["verify", str(build), "--limit", "3"]) == 2
    assert f"{build}: not a qflow build folder (no {MARKER} marker)" in capsys.readouterr().err


# ---- 7, 9: one model's results, whole or apart ---------------------------------------------

def test_results_of_another_ir_are_not_reported(build: Path) -> None:
    from flow.report import report

    doc = json.loads((build / "ir.json").read_text())
    (build / "verify.json").write_text(json.dumps({
        "samples": 360, "accuracy": {"golden": 0.123}, "ir_fingerprint": "another model's",
        "agreement": {"qonnx_executor": {"equal": 360, "total": 360}}}))
    text = report(build).read_text()
    assert "0.123" not in text
    assert "`verify.json`: verify.json was made from another IR (stale" in text
    assert doc == json.loads((build / "ir.json").read_text())


def test_a_second_writer_waits_for_the_first(build: Path, tmp_path: Path) -> None:
    """Another process holding the build's lock: this one enters only after it is done."""
    done = tmp_path / "first_done"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from flow.buildfolder import writing\n"
        f"with writing({str(build)!r}):\n"
        "    print('held', flush=True); time.sleep(1.5)\n"
        f"    Path({str(done)!r}).write_text('x')\n")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with writing(build):
        assert done.exists()  # not before the other writer finished
    assert holder.wait(timeout=30) == 0
    assert _hidden(build.parent) == []  # no lock file left behind


def test_limited_runs_stay_apart_and_counts_show(build: Path) -> None:
    from flow.report import report
    from flow.verify import verify

    whole = verify(build)
    limited = verify(build, limit=7)
    assert json.loads((build / "verify.json").read_text())["samples"] == whole["samples"] == 360
    assert json.loads((build / "verify.subset.json").read_text())["samples"] == limited["samples"] == 7
    summary = report(build).read_text().split("## Accuracy")[0]
    golden_row = next(r for r in summary.splitlines() if r.startswith("| quantized, golden"))
    assert golden_row.endswith("| 360 |"), golden_row
    train_row = next(r for r in summary.splitlines() if r.startswith("| quantized, Brevitas"))
    assert train_row.endswith("| 360 |"), train_row


def test_every_name_a_build_holds_is_qflows(build: Path) -> None:
    """OUTPUTS lists every top-level name the commands write (here: verify, the checks'
    work folders, report); a new output must be listed there or builds stop being replaceable."""
    from flow.check import check_build
    from flow.report import report

    check_build(build, limit=2)
    report(build)
    assert buildfolder.foreign_entries(build) == []
    assert set(os.listdir(build)) <= OUTPUTS


# ---- 14-16: links, swaps, leftovers -----------------------------------------------------------

def test_a_symlinked_build_stays_a_link(compiled: Path, tmp_path: Path) -> None:
    build = compiled
    link = tmp_path / "lnk"
    link.symlink_to(build)
    for _ in range(2):
        assert main(["compile", str(build / "model.qonnx.onnx"), "--out", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == build.resolve()
    assert (build / "ir.json").is_file() and buildfolder.is_build(build)
    assert _hidden(tmp_path) == []


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


def test_the_swap_is_one_step(compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = compiled
    """Replacing a build never renames it away first where renameat2 exists."""
    renames: list[tuple[str, str]] = []
    real = os.rename
    monkeypatch.setattr(buildfolder.os, "rename",
                        lambda a, b: (renames.append((str(a), str(b))), real(a, b))[1])
    assert main(["compile", str(build / "model.qonnx.onnx"), "--out", str(build)]) == 0
    assert renames == [] and buildfolder.is_build(build)
    assert _hidden(build.parent) == []


def test_an_interrupted_two_rename_swap_is_recovered(
        compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = compiled
    """Without RENAME_EXCHANGE: a crash between the two renames leaves .b.old, which the
    next command restores."""
    before = _snapshot(build)
    monkeypatch.setattr(buildfolder, "exchange", lambda a, b: False)
    real = os.rename

    def crash_on_second(a: os.PathLike[str], b: os.PathLike[str]) -> None:
        if Path(b).name == "b":
            raise KeyboardInterrupt  # killed between the renames
        real(a, b)

    monkeypatch.setattr(buildfolder.os, "rename", crash_on_second)
    assert main(["compile", str(build / "model.qonnx.onnx"), "--out", str(build)]) == 130
    assert not build.exists() and (build.parent / ".b.old").is_dir()
    monkeypatch.setattr(buildfolder.os, "rename", real)
    assert main(["report", str(build)]) == 0
    assert {k: v for k, v in _snapshot(build).items()
            if k in before and not k.startswith(("report", "figures", "analysis"))} == {
        k: v for k, v in before.items() if not k.startswith(("report", "figures", "analysis"))}
    assert not (build.parent / ".b.old").exists()


def test_staging_folders_of_dead_processes_are_removed(build: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    parent = build.parent
    orphan = parent / f".b.{buildfolder.STAGE_TAG}.{dead.pid}.abcd1234"
    alive = parent / f".b.{buildfolder.STAGE_TAG}.{os.getpid()}.abcd1234"
    unmarked = parent / f".b.{buildfolder.STAGE_TAG}.{dead.pid}.notours0"
    for f in (orphan, alive, unmarked):
        f.mkdir()
        (f / "ir.json").write_text("{}")
    mark(orphan)
    mark(alive)
    with writing(build):
        pass
    assert not orphan.exists() and alive.is_dir() and unmarked.is_dir()


# ---- the OS's errors: one line naming the file, the build intact ---------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_read_only_or_full_disk_is_one_line(
        code: int, compiled: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    build = compiled
    from flow import atomic

    before = _snapshot(build)

    def refuse(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    for argv in (["compile", str(build / "model.qonnx.onnx"), "--out", str(build)],
                 ["verify", str(build), "--limit", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(f": {os.strerror(code)}"), err
        assert str(build.parent) in err[0]
    assert _snapshot(build) == before and _hidden(build.parent) == []


# ---- the report: a bad file costs its section, never the report -------------------------

def test_malformed_results_cost_a_section_not_the_report(build: Path) -> None:
    from flow.fingerprint import model_fingerprint
    from flow.ir import load
    from flow.report import report

    fp = model_fingerprint(load(build))
    (build / "verify.json").write_text(json.dumps(
        {"samples": 360, "accuracy": [0.5], "agreement": ["not", "a", "dict"],
         "ir_fingerprint": fp}))
    (build / "sim.json").write_text("{ truncated")
    text = report(build).read_text()
    assert "a result file holds unexpected content (AttributeError" in text
    assert "`sim.json`: unreadable" in text


def test_a_sweep_not_run_is_no_section(build: Path) -> None:
    from flow.report import report

    text = report(build).read_text()
    assert "## Post-training bit-width sweep" not in text
    assert "| Bit-width sweep | sweep.json (missing) | `qflow sweep CONFIG --out" in text


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


def test_a_waiting_writer_names_the_holder(build: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from flow.buildfolder import writing\n"
        f"with writing({str(build)!r}):\n"
        "    print('held', flush=True); time.sleep(1)\n")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with caplog.at_level("WARNING", logger="qflow.build"), writing(build):
        pass
    assert f"another qflow (process {holder.pid}) is writing it; waiting" in caplog.text
    holder.wait(timeout=30)


def test_results_without_a_readable_ir_say_so(build: Path) -> None:
    from flow.ir import load
    from flow.report import report
    from flow.results import write_result

    write_result(build, "verify", load(build), {"samples": 360})
    (build / "ir.json").write_text("{ broken")
    text = report(build).read_text()
    assert "`verify.json`: the build has no readable IR to check it against" in text


def test_a_killed_build_leaves_the_build_and_its_staging_is_removed(build: Path) -> None:
    """kill -9 in the middle of replacing a build (as export and compile do): the build is
    as it was; the next command removes the dead process's staging folder."""
    before = _snapshot(build)
    proc = subprocess.run([sys.executable, "-c", (
        "import os, signal, shutil; from pathlib import Path\n"
        "from flow.buildfolder import replace_build\n"
        "def half_built(stage: Path) -> None:\n"
        f"    shutil.copy({str(build / 'ir.json')!r}, stage / 'ir.json')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"replace_build({str(build)!r}, half_built)\n")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == -9
    assert _snapshot(build) == before
    assert any(p.name.startswith(f".b.{buildfolder.STAGE_TAG}.") for p in build.parent.iterdir())
    with writing(build):
        pass
    assert _hidden(build.parent) == []


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
