"""Careless and hostile use of a generated hardware build folder: hand-edited images and
manifests refused rather than simulated, user files kept, links refused and never written
through, concurrent simulations, names with path characters, missing tools skipped by
check (the rest of hostile hardware use: test_hostile_hw.py)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from flow.backends import rtl
from flow.backends.rtl import simcache
from flow.backends.rtl.generate import (
    changed_files,
    current_manifest,
    load_manifest,
    rtl_dir,
)
from flow.board.boards import BOARDS
from flow.board.program import program
from flow.board.shell import hw_sources
from flow.fingerprint import STAMP
from flow.synthetic import random_codes, random_model
from tests.helpers.backends import only_check
from tests.helpers.hardware import build_of, simulate_equals_golden, small_model

ICEBREAKER = BOARDS["icebreaker"]

# --- careless and hostile use of a build folder --------------------------------------

def test_hand_edited_mem_refused_not_simulated(tmp_path: Path) -> None:
    """A memory image edited by hand is named, not simulated as if qflow had made it; with
    the IR changed since, it is not lost to a regeneration either."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    folder = rtl_dir(build)
    image = next(folder.glob("*_weights.mem"))
    edited = image.read_text() + "0\n"
    image.write_text(edited)
    with pytest.raises(ValueError, match=f"{image.name} changed since qflow generated it"):
        rtl.run(model, build, random_codes(model, 2))
    other = small_model(seed=1)
    with pytest.raises(ValueError, match="changed since qflow generated it"):
        current_manifest(other, build)
    assert image.read_text() == edited


def test_user_file_in_rtl_survives_regeneration(tmp_path: Path) -> None:
    model = small_model()
    build = build_of(model, tmp_path / "build")
    notes = rtl_dir(build) / "my_notes.txt"
    notes.write_text("mine")
    with pytest.raises(ValueError, match="my_notes.txt changed since"):
        current_manifest(small_model(seed=1), build)
    assert notes.read_text() == "mine"
    notes.unlink()
    current_manifest(small_model(seed=1), build)  # nothing of the user's: regenerated
    assert rtl.up_to_date(small_model(seed=1), build)


def test_swapped_for_symlink_refused(tmp_path: Path) -> None:
    """An rtl/ file replaced by a symbolic link to /etc/passwd is refused, not read."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    image = next(rtl_dir(build).glob("*_weights.mem"))
    image.unlink()
    image.symlink_to("/etc/passwd")
    assert changed_files(rtl_dir(build)) == [image.name]
    with pytest.raises(ValueError, match=image.name):
        current_manifest(model, build)


def test_missing_generated_file_is_regenerated(tmp_path: Path) -> None:
    model = small_model()
    build = build_of(model, tmp_path / "build")
    image = next(rtl_dir(build).glob("*_weights.mem"))
    text = image.read_text()
    image.unlink()
    man = current_manifest(model, build)
    assert image.read_text() == text and str(image.resolve()) in man["mem_files"]


def test_damaged_manifest_is_named(tmp_path: Path) -> None:
    model = small_model()
    build = build_of(model, tmp_path / "build")
    (rtl_dir(build) / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=r"rtl/manifest.json: not JSON .*delete"):
        current_manifest(model, build)


def test_rtl_of_older_qflow_is_regenerated(tmp_path: Path) -> None:
    """An rtl/ whose stamp still holds the absolute `location` of older versions, and whose
    manifest names absolute paths, is stale: regenerated, not refused."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    folder = rtl_dir(build)
    stamp = json.loads((folder / STAMP).read_text())
    (folder / STAMP).write_text(json.dumps({**stamp, "location": str(folder)}))
    man = json.loads((folder / "manifest.json").read_text())
    del man["files"]
    man["sources"] = [str(folder / s) for s in man["sources"]]
    (folder / "manifest.json").write_text(json.dumps(man))
    assert not rtl.up_to_date(model, build)
    current_manifest(model, build)
    assert rtl.up_to_date(model, build)


def test_python_in_the_sim_folder_never_runs(tmp_path: Path) -> None:
    """cocotb puts the folder the simulator runs in first on sys.path: a flow.py or
    numpy.py left in build/sim/ must not be imported. The simulator runs in a new folder
    holding only its memory images and job files."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    marker = tmp_path / "planted-ran"
    (build / "sim").mkdir()
    for name in ("flow.py", "numpy.py", "cocotb_tools.py"):
        (build / "sim" / name).write_text(f"open({str(marker)!r}, 'w').close()\n")
    simulate_equals_golden(model, build)
    assert not marker.exists()
    assert sorted(p.name for p in (build / "sim").iterdir()) == [
        "cocotb_tools.py", "flow.py", "numpy.py", "sim.log"]


def test_concurrent_simulations_of_one_build(tmp_path: Path) -> None:
    """Two `qflow sim` of one build at once: each has its own job and result files."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    simulate_equals_golden(model, build, 1)  # built once, before the race
    errors: list[BaseException] = []

    def one(seed: int) -> None:
        try:
            simulate_equals_golden(model, build, 3 + seed, seed)
        except BaseException as e:  # noqa: BLE001  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_board_json_bitstream_outside_folder_refused(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """program() loads only a file of the board folder, whatever board.json says."""
    from flow.fingerprint import write_stamp

    model = small_model()
    folder = tmp_path / "board" / "icebreaker"
    folder.mkdir(parents=True)
    (folder / "board.json").write_text(json.dumps({"bitstream": "../../../etc/passwd"}))
    write_stamp(folder, model, hw_sources())
    monkeypatch.setattr("flow.board.program.find_loader", lambda: "/bin/true")
    with pytest.raises(RuntimeError, match="is not a file name in"):
        program(folder, ICEBREAKER, model)


def test_huge_folding_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dense0.*PE 1000000000"):
        random_model([16, 8, 4], ["INT2", "INT2"], ["UINT2"], folding=[(10**9, 1), (1, 1)])


def test_same_named_images_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "w.mem").write_text("0\n")
    folder = rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    with pytest.raises(ValueError, match="same name"):
        rtl.run_bench(folder, tmp_path / "work", [(0, 0)], 1,
                      images=[tmp_path / "a" / "w.mem", tmp_path / "b" / "w.mem"])


def test_sim_log_symlink_never_written_through(tmp_path: Path) -> None:
    """build/sim/sim.log left as a symbolic link to a user's file: the simulation's log
    replaces the link, the file is untouched."""
    model = small_model()
    build = build_of(model, tmp_path / "build")
    mine = tmp_path / "my_file.txt"
    mine.write_text("mine")
    (build / "sim").mkdir()
    (build / "sim" / "sim.log").symlink_to(mine)
    simulate_equals_golden(model, build)
    assert mine.read_text() == "mine" and not (build / "sim" / "sim.log").is_symlink()


def test_rtl_symlinked_to_a_user_folder_is_not_emptied(tmp_path: Path) -> None:
    """rtl/ a symbolic link to a folder of the user's: regenerating replaces the link, not
    the folder's files."""
    model = small_model()
    build = tmp_path / "build"
    model.save(build)
    mine = tmp_path / "my_rtl"
    mine.mkdir()
    (mine / "design.sv").write_text("module mine; endmodule\n")
    rtl_dir(build).symlink_to(mine)
    current_manifest(model, build)
    assert (mine / "design.sv").read_text() == "module mine; endmodule\n"
    assert not rtl_dir(build).is_symlink() and rtl.up_to_date(model, build)


def test_uncreatable_cache_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache folder that cannot be made (its parent a file here; a read-only home
    alike) is a RuntimeError naming it and the way out, not a bare OSError."""
    (tmp_path / "home").write_text("")
    monkeypatch.setenv(simcache.CACHE_ENV, str(tmp_path / "home" / "cache"))
    with pytest.raises(RuntimeError, match="build cache .*home/cache cannot be created .*; "
                                           "set .QFLOW_SIM_CACHE to another folder"):
        simcache.cache_root()


def test_sim_folder_taken_by_a_file_is_named(tmp_path: Path) -> None:
    model = small_model()
    build = build_of(model, tmp_path / "build")
    (build / "sim").write_text("mine")
    with pytest.raises(RuntimeError, match="build/sim is not a folder"):
        rtl.run(model, build, random_codes(model, 2))
    assert (build / "sim").read_text() == "mine"


def test_model_name_with_path_characters_stays_in_rtl(tmp_path: Path) -> None:
    """A model (and layer) name like '../../x y' names files and modules inside rtl/ only."""
    model = small_model(name="../../evil name")
    folder = rtl.generate(model, tmp_path / "build")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]
    man = load_manifest(folder)
    assert all(Path(f).parent == folder.resolve() for f in man["sources"] + man["mem_files"])
    assert man["top"].isidentifier()


def test_check_skips_a_check_whose_tool_is_missing(digits_build: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`qflow check` without Verilator: the simulation is skipped with the tool and how to
    get it (as a layer kind not built yet is), the other checks run, check.json is written."""
    import json

    from flow import check
    from flow.backends import rtl
    from flow.tools import MissingTool

    build = Path(shutil.copytree(digits_build, tmp_path / "b"))

    def no_verilator(*args: object) -> None:
        raise MissingTool("RTL simulation needs verilator, which is not installed")

    monkeypatch.setattr(rtl, "check", no_verilator)
    only_check(monkeypatch, "sim")
    outcome = check.check_build(build, limit=3)
    assert outcome["sim"] == {"status": "skipped",
                              "reason": "RTL simulation needs verilator, which is not installed"}
    assert json.loads((build / "check.subset.json").read_text())["checks"]["sim"]["status"] == \
        "skipped"
