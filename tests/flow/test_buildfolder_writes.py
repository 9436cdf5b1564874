"""What qflow writes into its builds: two commands never mix two models' outputs (one writer
at a time, results of another IR not reported, limited runs apart), a swap is one step and
an interrupted or killed one loses nothing, the OS's errors (read-only or full disk) are
one line naming the file, and a bad result file costs its report section, never the report."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flow import buildfolder
from flow.buildfolder import OUTPUTS, mark, writing
from flow.cli import main
from tests.conftest import ROOT
from tests.helpers.buildfolder import hidden, snapshot

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
    assert hidden(build.parent) == []  # no lock file left behind


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
    assert hidden(tmp_path) == []


def test_the_swap_is_one_step(compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = compiled
    """Replacing a build never renames it away first where renameat2 exists."""
    renames: list[tuple[str, str]] = []
    real = os.rename
    monkeypatch.setattr(buildfolder.os, "rename",
                        lambda a, b: (renames.append((str(a), str(b))), real(a, b))[1])
    assert main(["compile", str(build / "model.qonnx.onnx"), "--out", str(build)]) == 0
    assert renames == [] and buildfolder.is_build(build)
    assert hidden(build.parent) == []


def test_an_interrupted_two_rename_swap_is_recovered(
        compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = compiled
    """Without RENAME_EXCHANGE: a crash between the two renames leaves .b.old, which the
    next command restores."""
    before = snapshot(build)
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
    assert {k: v for k, v in snapshot(build).items()
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


def test_a_killed_build_leaves_the_build_and_its_staging_is_removed(build: Path) -> None:
    """kill -9 in the middle of replacing a build (as export and compile do): the build is
    as it was; the next command removes the dead process's staging folder."""
    before = snapshot(build)
    proc = subprocess.run([sys.executable, "-c", (
        "import os, signal, shutil; from pathlib import Path\n"
        "from flow.buildfolder import replace_build\n"
        "def half_built(stage: Path) -> None:\n"
        f"    shutil.copy({str(build / 'ir.json')!r}, stage / 'ir.json')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"replace_build({str(build)!r}, half_built)\n")],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == -9
    assert snapshot(build) == before
    assert any(p.name.startswith(f".b.{buildfolder.STAGE_TAG}.") for p in build.parent.iterdir())
    with writing(build):
        pass
    assert hidden(build.parent) == []


# ---- the OS's errors: one line naming the file, the build intact ---------------------------

@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_read_only_or_full_disk_is_one_line(
        code: int, compiled: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    build = compiled
    from flow import atomic

    before = snapshot(build)

    def refuse(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    for argv in (["compile", str(build / "model.qonnx.onnx"), "--out", str(build)],
                 ["verify", str(build), "--limit", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].endswith(f": {os.strerror(code)}"), err
        assert str(build.parent) in err[0]
    assert snapshot(build) == before and hidden(build.parent) == []


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


def test_results_without_a_readable_ir_say_so(build: Path) -> None:
    from flow.ir import load
    from flow.report import report
    from flow.results import write_result

    write_result(build, "verify", load(build), {"samples": 360})
    (build / "ir.json").write_text("{ broken")
    text = report(build).read_text()
    assert "`verify.json`: the build has no readable IR to check it against" in text
