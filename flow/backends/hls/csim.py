"""C simulation of build_dir/hls/ with g++, and the `qflow hls` command.

The templates compile against Xilinx's ap_int.h / hls_stream.h where they are installed
(Vitis' own, or the open copy scripts/setup.sh extracts: flow.backends.hls.vendor), else
against the built-in fallback types; `vendor_include` ("auto", "fallback" or a folder;
default $QFLOW_HLS_TYPES, else "auto") chooses. The compiled testbench is cached in build_dir/hls_csim/, one
binary per set of flags, rebuilt when the C++ it was compiled from changes, and run only
while its own sha256 is the one recorded when qflow compiled it (a binary swapped in
build_dir/hls_csim/ is compiled again, never run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from flow.argtypes import positive_float
from flow.atomic import write_json
from flow.backends.check import add_arguments, run_check
from flow.backends.hls.cpp import c_identifier
from flow.backends.hls.generate import DEFAULT_CLOCK_NS, DEFAULT_PART, current, generate
from flow.backends.hls.ops import stages
from flow.backends.hls.vendor import resolve
from flow.fingerprint import file_digest, files_fingerprint
from flow.inputs import check_codes
from flow.ir import Model
from flow.tools import require_tool

log = logging.getLogger("qflow.hls")

CXX = "g++"
CXXFLAGS = ("-std=c++14", "-Wall", "-Wextra", "-Werror", "-O2")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
# GCC reports these inside the vendor's ap_private.h (its own code, inlined), not in ours
VENDOR_NO_WARN = ("-Wno-maybe-uninitialized", "-Wno-uninitialized",
                  "-Wno-aggressive-loop-optimizations")


def cxx_flags(sanitize: bool = False, vendor_include: Path | None = None) -> list[str]:
    """Compiler flags: the fallback types, or Vitis' ap_int.h / hls_stream.h found in
    `vendor_include` (e.g. $XILINX_HLS/include), which the templates then use."""
    flags = [*CXXFLAGS, *(SANITIZE if sanitize else ())]
    if vendor_include is not None:
        if not (Path(vendor_include) / "ap_int.h").is_file():
            raise FileNotFoundError(f"{vendor_include}: no ap_int.h (Vitis HLS include folder)")
        flags += [*VENDOR_NO_WARN, "-isystem", str(vendor_include)]
    return flags


def compile_csim(folder: Path, name: str, exe: Path, flags: list[str]) -> tuple[float, str]:
    """g++ the testbench and top in `folder` into `exe`; returns the seconds it took and
    the executable's sha256."""
    tmp = exe.with_name(f".{exe.name}.{os.getpid()}.tmp")  # renamed when complete
    cmd = [require_tool(CXX, "HLS C simulation"), *flags, f"-I{folder}",
           str(folder / f"{name}_tb.cpp"), str(folder / f"{name}_top.cpp"), "-o", str(tmp)]
    exe.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"HLS C simulation does not compile ({' '.join(cmd)}):\n"
                           f"{r.stderr[-4000:]}")
    digest = file_digest(tmp)
    os.replace(tmp, exe)
    return time.perf_counter() - t0, digest


def simulate(exe: Path, codes: np.ndarray, n_out: int, work: Path) -> tuple[np.ndarray, float]:
    """Run the compiled testbench on codes [N, F]; (outputs [N, n_out], seconds)."""
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:  # concurrent runs share `work`
        src, dst = Path(tmp) / "input.bin", Path(tmp) / "output.bin"
        src.write_bytes(np.ascontiguousarray(codes, dtype="<i8").tobytes())
        t0 = time.perf_counter()
        r = subprocess.run([str(exe), str(src), str(dst)], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if r.returncode:
            raise RuntimeError(f"HLS C simulation failed (exit {r.returncode}):\n"
                               f"{r.stderr[-4000:]}")
        out = np.fromfile(dst, dtype="<i8").astype(np.int64)
    return out.reshape(len(codes), n_out), seconds


def build(model: Model, build_dir: Path, flags: list[str]) -> tuple[Path, float]:
    """The compiled C simulation of the model: regenerate build_dir/hls/ when its stamp
    differs from the IR's, compile unless a binary of this C++ and these flags exists.
    Returns (exe, seconds spent compiling, 0.0 when cached)."""
    build_dir = Path(build_dir)
    name = c_identifier(model.name)
    folder = current(model, build_dir)
    # keyed by the C++ compiled, which the stamp's IR and templates determine, and the flags
    digest = files_fingerprint([*folder.glob("*.hpp"), *folder.glob("*.cpp")])
    tag = hashlib.sha256(" ".join(flags).encode()).hexdigest()[:8]
    exe = build_dir / "hls_csim" / f"{name}_csim_{tag}"
    record = exe.with_name(exe.name + ".json")  # {"cpp": digest, "executable": its sha256}
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        recorded = None
    if (isinstance(recorded, dict) and recorded.get("cpp") == digest and exe.is_file()
            and not exe.is_symlink()
            and recorded.get("executable") == file_digest(exe)):
        return exe, 0.0
    seconds, exe_digest = compile_csim(folder, name, exe, flags)
    write_json(record, {"cpp": digest, "executable": exe_digest})
    return exe, seconds


def run_timed(model: Model, build_dir: Path, codes: np.ndarray, sanitize: bool = False,
              vendor_include: str | Path | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """C-simulate checked codes: ({"hls": last accumulators [N, C]}, the details hls.json
    keeps: compile and run seconds, compiler command, types, per-layer figures)."""
    build_dir = Path(build_dir)
    include = resolve(vendor_include)
    flags = cxx_flags(sanitize, include)
    exe, compile_seconds = build(model, build_dir, flags)
    out, run_seconds = simulate(exe, codes, model.layers[-1].out_features, build_dir / "hls_csim")
    details: dict[str, Any] = {
        "compile_seconds": round(compile_seconds, 3),
        "compiled": compile_seconds > 0,
        "run_seconds": round(run_seconds, 3),
        "top": f"{c_identifier(model.name)}_top",
        "cxx": " ".join([CXX, *flags]),
        "types": f"vendor ({include})" if include else "fallback",
        "initiation_interval_cycles": model.initiation_interval,
        "layers": [s.report() for s in stages(model)],
    }
    return {"hls": out}, details


def run(model: Model, build_dir: Path, codes: np.ndarray, sanitize: bool = False,
        vendor_include: str | Path | None = None, **_: Any) -> np.ndarray:
    """C-simulate the HLS top on integer codes [N, features] -> last accumulators [N, C]."""
    outputs, _ = run_timed(model, build_dir, check_codes(model, codes), sanitize, vendor_include)
    return outputs["hls"]


def hls_check(build_dir: Path, inputs: str | Path | None = None, limit: int | None = None,
              part: str = DEFAULT_PART, clock_ns: float = DEFAULT_CLOCK_NS,
              sanitize: bool = False, vendor_include: str | Path | None = None
              ) -> dict[str, Any]:
    """`qflow hls`: generate build_dir/hls/, C-simulate it on the inputs, compare with the
    golden model; writes build_dir/hls.json and raises when a sample differs."""

    def execute(model: Model, build_dir: Path, codes: np.ndarray
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        generate(model, build_dir, part, clock_ns)
        outputs, details = run_timed(model, build_dir, codes, sanitize, vendor_include)
        log.info("hls: compile %.1f s, run %.2f s", details["compile_seconds"],
                 details["run_seconds"])
        return outputs, details

    return run_check("hls", build_dir, inputs, limit, execute)


def cmd_hls(a: argparse.Namespace) -> None:
    hls_check(Path(a.build_dir), a.inputs, a.limit, a.part, a.clock_ns, a.sanitize,
              "fallback" if a.fallback_types else a.vendor_include)


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("hls", help="generate the HLS C++ and check its C simulation "
                                   "against the golden model (writes hls.json)")
    add_arguments(s)
    s.add_argument("--part", default=DEFAULT_PART, help="FPGA part for run_hls.tcl")
    s.add_argument("--clock-ns", type=positive_float, default=DEFAULT_CLOCK_NS,
                   help="clock period for run_hls.tcl")
    s.add_argument("--sanitize", action="store_true", help="build with ASan and UBSan")
    types = s.add_mutually_exclusive_group()
    types.add_argument("--vendor-include", type=Path, metavar="DIR",
                       help="simulate with Xilinx's ap_int.h/hls_stream.h from DIR (default: "
                            "$XILINX_HLS/include or the venv's copy from scripts/setup.sh, "
                            "when present; $QFLOW_HLS_TYPES overrides)")
    types.add_argument("--fallback-types", action="store_true",
                       help="simulate with qflow's built-in ap_int/hls::stream stand-ins")
    s.set_defaults(func=cmd_hls)
