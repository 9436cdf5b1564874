"""HLS backend: the IR as Vitis HLS C++ (templates in hls/ + a generated dataflow top).

`generate` writes build_dir/hls/: the templates, one parameter header per layer (weights
packed per PE and SIMD, thresholds per PE and output fold), `<model>_top.cpp/.hpp`, a
self-checking C-simulation testbench with a few golden samples, and `run_hls.tcl` (csim,
csynth, IP export). The folding is the IR's `layer.folding`, as in the RTL.

`run` compiles that C simulation with g++ (the templates' fallback types stand in for
Vitis' ap_int/hls::stream) and returns the last layer's accumulators, which must equal the
golden model's exactly. `hls_report` also times it and writes build_dir/hls.json.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden, synthetic
from flow.atomic import replace_dir, write_json, write_text
from flow.datatypes import DataType, bits_for_range
from flow.inputs import command_codes
from flow.ir import DenseLayer, Model, popcount_thresholds

log = logging.getLogger("qflow.hls")

TEMPLATES = Path(__file__).resolve().parents[2] / "hls"
CXX = "g++"
CXXFLAGS = ("-std=c++14", "-Wall", "-Wextra", "-Werror", "-O2")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
# GCC reports these inside the vendor's ap_private.h (its own code, inlined), not in ours
VENDOR_NO_WARN = ("-Wno-maybe-uninitialized", "-Wno-uninitialized",
                  "-Wno-aggressive-loop-optimizations")
MAX_BITS = 32  # qflow::kMaxBits: widest accumulator, weight and activation (exact in int64)
AP_INT_MAX_W = 4096  # widest ap_uint Vitis HLS allows (UG1399)
DEFAULT_PART = "xc7z020clg400-1"
DEFAULT_CLOCK_NS = 10.0
TB_SAMPLES = 16  # golden samples the generated testbench checks by itself in csim
STAMP = "sources.sha256"


def cpp_type(t: DataType) -> str:
    """The qflow C++ type of an IR datatype (TERNARY is a 2-bit signed integer)."""
    if t.is_bipolar:
        return "qflow::bipolar"
    return f"qflow::{'int' if t.signed else 'uint'}_t<{t.bits}>"


def c_identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"m_{ident}"


@dataclass
class Stage:
    """One MVAU as the templates see it: the datapath's accumulator and its activation."""

    layer: DenseLayer
    index: int
    acc_bits: int
    act_type: str  # qflow::thresholds<...> or qflow::accumulator_out<...>
    out_type: str  # C++ datatype of the output fields
    out_bits: int
    thresholds: np.ndarray | None  # [out, count] in the accumulator's domain, clipped

    @property
    def name(self) -> str:
        return f"layer{self.index}"

    @property
    def datapath(self) -> str:
        if self.layer.is_xnor:
            return "xnor-popcount"
        if self.layer.weight_dtype.is_bipolar or self.layer.input_dtype.is_bipolar:
            return "add-sub"
        return "mac"


def stage(layer: DenseLayer, index: int) -> Stage:
    """The accumulator width and activation of one layer; thresholds are clipped to the
    accumulator's reachable range (a threshold below it always counts, above never), so
    their width never exceeds the accumulator's by more than a bit."""
    at = f"HLS: layer {index} ({layer.name}, from {layer.source})"
    for what, t in (("input", layer.input_dtype), ("weight", layer.weight_dtype)):
        if t.bits > MAX_BITS:
            raise ValueError(f"{at}: {what} type {t} is wider than {MAX_BITS} bits")
    if layer.is_xnor:
        lo, hi = 0, layer.in_features  # popcount of agreeing bits
    else:
        lo, hi = layer.acc_min, layer.acc_max
    acc_bits = bits_for_range(min(lo, -1), hi)
    if acc_bits > MAX_BITS or layer.acc_dtype.bits > MAX_BITS:
        raise ValueError(f"{at}: accumulator of {layer.acc_dtype.bits} bits; the HLS templates "
                         f"support at most {MAX_BITS}")
    f = layer.folding
    act = layer.activation
    if act is None:
        mul, add = (2, -layer.in_features) if layer.is_xnor else (1, 0)
        bits = layer.acc_dtype.bits
        return Stage(layer, index, acc_bits, f"qflow::accumulator_out<{bits}, {mul}, {add}>",
                     f"qflow::int_t<{bits}>", bits, None)
    if act.out_dtype.bits > MAX_BITS:
        raise ValueError(f"{at}: output type {act.out_dtype} is wider than {MAX_BITS} bits")
    t = popcount_thresholds(layer) if layer.is_xnor else act.values
    t = np.clip(t, lo, hi + 1).astype(np.int64)
    t_bits = bits_for_range(min(int(t.min()), -1), int(t.max()))
    nf = layer.out_features // f.pe
    act_type = (f"qflow::thresholds<{f.pe}, {nf}, {act.count}, {t_bits}, "
                f"{cpp_type(act.out_dtype)}, {act.base}, {act.step}>")
    return Stage(layer, index, acc_bits, act_type, cpp_type(act.out_dtype), act.out_dtype.bits, t)


# ---- parameter headers ------------------------------------------------------------------


def field_codes(values: np.ndarray, t: DataType) -> np.ndarray:
    """Stored field of each value: one bit for BIPOLAR (1 = +1), else two's complement."""
    if t.is_bipolar:
        return (values > 0).astype(np.uint64)
    return (values.astype(np.int64) & ((1 << t.bits) - 1)).astype(np.uint64)


def hex_words(fields: np.ndarray, bits: int) -> np.ndarray:
    """Pack fields [..., k] of `bits` bits each (field 0 least significant) into hex strings."""
    planes = (fields[..., None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    flat = planes.reshape(*fields.shape[:-1], -1).astype(np.uint8)
    pad = -flat.shape[-1] % 4
    flat = np.concatenate([flat, np.zeros((*flat.shape[:-1], pad), np.uint8)], axis=-1)
    nibbles = flat.reshape(*flat.shape[:-1], -1, 4) @ np.array([1, 2, 4, 8], np.uint8)
    ascii_ = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles[..., ::-1]]
    text = np.ascontiguousarray(ascii_).view(f"S{ascii_.shape[-1]}")[..., 0]
    return np.char.add("0x", text.astype(str))


def c_array(rows: list[list[str]], per_line: int = 8) -> str:
    """Nested braces for a 2-D array of C expressions."""
    out = []
    for row in rows:
        lines = [", ".join(row[i:i + per_line]) for i in range(0, len(row), per_line)]
        out.append("{" + ",\n ".join(lines) + "}")
    return "{" + ",\n".join(out) + "}"


def params_header(s: Stage) -> str:
    """Weights [PE][tiles] of SIMD packed fields and the activation, as function-local
    statics: included inside the layer's function so its pragmas can partition them."""
    layer, f = s.layer, s.layer.folding
    nf, sf = layer.out_features // f.pe, layer.in_features // f.simd
    wbits = f.simd * layer.weight_dtype.bits
    # W[nf * PE + pe, sf * SIMD + s] -> [pe, nf * SF + sf, s]
    w = layer.weights.reshape(nf, f.pe, sf, f.simd).transpose(1, 0, 2, 3)
    words = hex_words(field_codes(w.reshape(f.pe, nf * sf, f.simd), layer.weight_dtype),
                      layer.weight_dtype.bits)
    # an integer literal where it fits: Vitis' string constructor makes csim compile slowly
    rows = [[f"ap_uint<{wbits}>({h}ULL)" if wbits <= 64 else f'ap_uint<{wbits}>("{h}", 16)'
             for h in row] for row in words]
    text = [
        f"// {layer.name} (from {layer.source}): {layer.in_features} -> {layer.out_features}, "
        f"{layer.input_dtype} x {layer.weight_dtype} weights, PE {f.pe}, SIMD {f.simd}.",
        "// Generated by qflow from the IR; included inside the layer's function.",
        f"static const ap_uint<{wbits}> {s.name}_weights[{f.pe}][{nf * sf}] =",
        c_array(rows) + ";",
    ]
    if s.thresholds is None:
        text.append(f"static const {s.act_type} {s.name}_act = {{}};")
    else:
        # T[nf * PE + pe, j] -> [pe][nf][j]
        t = s.thresholds.reshape(nf, f.pe, -1).transpose(1, 0, 2)
        planes = [c_array([[f"{int(v)}LL" for v in row] for row in plane]) for plane in t]
        text += [f"static const {s.act_type} {s.name}_act = {{{{", ",\n".join(planes), "}};"]
    return "\n".join(text) + "\n"


# ---- top, testbench, script -------------------------------------------------------------


def word(elems: int, t: str) -> str:
    return f"ap_uint<{elems} * {t}::bits>"


def top_sources(name: str, stages: list[Stage]) -> dict[str, str]:
    """`<name>_top.hpp/.cpp`: one dataflow process per layer, width converters between
    layers whose PE and next SIMD differ, AXI-Stream ports, free-running control."""
    first, last = stages[0].layer, stages[-1].layer
    in_t = cpp_type(first.input_dtype)
    in_word, out_word = word(first.folding.simd, in_t), word(last.folding.pe, stages[-1].out_type)
    guard = f"{name.upper()}_TOP_HPP"
    widest = max(max(s.layer.folding.simd * max(s.layer.input_dtype.bits, s.layer.weight_dtype.bits),
                     s.layer.folding.pe * s.out_bits) for s in stages)
    if widest > AP_INT_MAX_W:
        raise ValueError(f"HLS: a stream or weight word of {widest} bits; Vitis' ap_uint holds "
                         f"at most {AP_INT_MAX_W}: lower PE or SIMD")
    # the vendor's default limit is 1024 bits; it must be raised before ap_int.h is included
    width_limit = f"#define AP_INT_MAX_W {widest}\n" if widest > 1024 else ""
    hpp = f"""// Generated by qflow: the {name} accelerator's top function (Vitis HLS).
#ifndef {guard}
#define {guard}

{width_limit}#include "qflow.hpp"

namespace {name}_io {{
using in_type = {in_t};
using out_type = {stages[-1].out_type};
constexpr unsigned in_features = {first.in_features}, in_elems = {first.folding.simd};
constexpr unsigned out_features = {last.out_features}, out_elems = {last.folding.pe};
using in_word = {in_word};
using out_word = {out_word};
}}  // namespace {name}_io

// One input vector in ({first.in_features // first.folding.simd} words), \
its {last.out_features} outputs out ({last.out_features // last.folding.pe} words).
void {name}_top(hls::stream<{name}_io::in_word>& in0, hls::stream<{name}_io::out_word>& out0);

#endif  // {guard}
"""
    funcs, body = [], []
    src = "in0"
    for k, s in enumerate(stages):
        layer, f = s.layer, s.layer.folding
        it = cpp_type(layer.input_dtype)
        if k > 0 and stages[k - 1].layer.folding.pe != f.simd:
            prev = stages[k - 1]
            body += [f"  hls::stream<{word(f.simd, it)}> {s.name}_in(\"{s.name}_in\");",
                     f"  QFLOW_HLS(STREAM variable={s.name}_in depth=2)",
                     f"  qflow::dwc<{prev.layer.folding.pe}, {f.simd}, {it}::bits, "
                     f"{layer.in_features}>({src}, {s.name}_in);"]
            src = f"{s.name}_in"
        dst = "out0" if k == len(stages) - 1 else f"{s.name}_out"
        if dst != "out0":
            body += [f"  hls::stream<{word(f.pe, s.out_type)}> {dst}(\"{dst}\");",
                     f"  QFLOW_HLS(STREAM variable={dst} depth=2)"]
        body.append(f"  {s.name}({src}, {dst});")
        src = dst
        partitions = [f"  QFLOW_HLS(ARRAY_PARTITION variable={s.name}_weights complete dim=1)"]
        if s.thresholds is not None:
            partitions += [f"  QFLOW_HLS(ARRAY_PARTITION variable={s.name}_act.t complete dim={d})"
                           for d in (1, 3)]
        funcs.append(f"""// {layer.name}: {layer.cycles} cycles per vector ({s.datapath})
static void {s.name}(hls::stream<{word(f.simd, it)}>& in,
                   hls::stream<{word(f.pe, s.out_type)}>& out) {{
#include "{s.name}_params.hpp"
{chr(10).join(partitions)}
  qflow::mvau<{layer.in_features}, {layer.out_features}, {f.simd}, {f.pe}, \
{cpp_type(layer.weight_dtype)}, {it}, {s.acc_bits}, {s.act_type}>(
      in, out, {s.name}_weights, {s.name}_act);
}}
""")
    cpp = f"""// Generated by qflow: the {name} accelerator, one dataflow stage per layer.
#include "{name}_top.hpp"

{chr(10).join(funcs)}
void {name}_top(hls::stream<{name}_io::in_word>& in0, hls::stream<{name}_io::out_word>& out0) {{
  QFLOW_HLS(INTERFACE axis port=in0)
  QFLOW_HLS(INTERFACE axis port=out0)
  QFLOW_HLS(INTERFACE ap_ctrl_none port=return)
  QFLOW_HLS(DATAFLOW)
{chr(10).join(body)}
}}
"""
    return {f"{name}_top.hpp": hpp, f"{name}_top.cpp": cpp}


def testbench_source(name: str) -> str:
    return f"""// Generated by qflow: C-simulation testbench of {name}_top (see qflow_tb.hpp).
#include "{name}_top.hpp"
#include "qflow_tb.hpp"

int main(int argc, char** argv) {{
  namespace m = {name}_io;
  return qflow::testbench<m::in_type, m::in_features, m::in_elems, m::out_type,
                          m::out_features, m::out_elems>(argc, argv, {name}_top);
}}
"""


def tcl_script(name: str, part: str, clock_ns: float) -> str:
    return f"""# Generated by qflow: Vitis HLS C simulation, synthesis and IP export of {name}_top.
# Run from any folder: vitis_hls -f <this folder>/run_hls.tcl; the project is created in
# the current folder, the sources stay here.
set here [file dirname [file normalize [info script]]]
open_project -reset {name}_hls
set_top {name}_top
add_files $here/{name}_top.cpp -cflags "-std=c++14 -I$here"
add_files -tb $here/{name}_tb.cpp -cflags "-std=c++14 -I$here"
open_solution -reset solution1 -flow_target vivado
set_part {{{part}}}
create_clock -period {clock_ns:g} -name default
csim_design -argv "$here/tb_input.bin $here/tb_output.bin $here/tb_expected.bin"
csynth_design
export_design -format ip_catalog
exit
"""


def sources(model: Model) -> dict[str, str | bytes]:
    """Every C++ and data file of build_dir/hls/ by name (testbench data as raw int64).

    The last layer may carry thresholds (template tests use single hidden layers): the top
    then outputs its codes, and so does the golden model."""
    name = c_identifier(model.name)
    stages = [stage(layer, i) for i, layer in enumerate(model.layers)]
    files: dict[str, str | bytes] = {p.name: p.read_text() for p in sorted(TEMPLATES.glob("*.hpp"))}
    files.update({f"{s.name}_params.hpp": params_header(s) for s in stages})
    files.update(top_sources(name, stages))
    files[f"{name}_tb.cpp"] = testbench_source(name)
    codes = synthetic.random_codes(model, TB_SAMPLES)
    files["tb_input.bin"] = codes.astype("<i8").tobytes()
    files["tb_expected.bin"] = golden.run_codes(model, codes).astype("<i8").tobytes()
    return files


def fingerprint(files: dict[str, str | bytes]) -> str:
    h = hashlib.sha256()
    for k in sorted(files):
        v = files[k]
        h.update(k.encode() + b"\0" + (v.encode() if isinstance(v, str) else v) + b"\0")
    return h.hexdigest()


def write_sources(folder: Path, files: dict[str, str | bytes], extra: dict[str, str]) -> Path:
    def build(tmp: Path) -> None:
        for k, v in {**files, **extra}.items():
            p = tmp / k
            if isinstance(v, bytes):
                p.write_bytes(v)
            else:
                p.write_text(v)
        (tmp / STAMP).write_text(fingerprint(files) + "\n")

    return replace_dir(folder, build)


def generate(model: Model, build_dir: Path, part: str = DEFAULT_PART,
             clock_ns: float = DEFAULT_CLOCK_NS) -> Path:
    """Write build_dir/hls/ (atomically) and return it."""
    model.validate(model.name)
    name = c_identifier(model.name)
    return write_sources(Path(build_dir) / "hls", sources(model),
                         {"run_hls.tcl": tcl_script(name, part, clock_ns)})


# ---- C simulation -----------------------------------------------------------------------


def cxx_flags(sanitize: bool = False, vendor_include: Path | None = None) -> list[str]:
    """Compiler flags: the fallback types, or Vitis' ap_int.h / hls_stream.h found in
    `vendor_include` (e.g. $XILINX_HLS/include), which the templates then use."""
    flags = [*CXXFLAGS, *(SANITIZE if sanitize else ())]
    if vendor_include is not None:
        if not (Path(vendor_include) / "ap_int.h").is_file():
            raise FileNotFoundError(f"{vendor_include}: no ap_int.h (Vitis HLS include folder)")
        flags += [*VENDOR_NO_WARN, "-isystem", str(vendor_include)]
    return flags


def compile_csim(folder: Path, name: str, exe: Path, flags: list[str]) -> float:
    """g++ the testbench and top in `folder` into `exe`; returns the seconds it took."""
    tmp = exe.with_name(f".{exe.name}.{os.getpid()}.tmp")  # renamed when complete
    cmd = [CXX, *flags, f"-I{folder}",
           str(folder / f"{name}_tb.cpp"), str(folder / f"{name}_top.cpp"), "-o", str(tmp)]
    exe.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"HLS C simulation does not compile ({' '.join(cmd)}):\n"
                           f"{r.stderr[-4000:]}")
    os.replace(tmp, exe)
    return time.perf_counter() - t0


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


def check_codes(model: Model, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    t = model.input.out_dtype
    if codes.ndim != 2 or codes.shape[1] != model.input.features:
        raise ValueError(f"HLS: input codes of shape {codes.shape}, the model takes "
                         f"[N, {model.input.features}]")
    bad = (codes != -1) & (codes != 1) if t.is_bipolar else (codes < t.min) | (codes > t.max)
    if bad.any():
        raise ValueError(f"HLS: input codes outside {t} (e.g. sample {np.argwhere(bad)[0][0]})")
    return codes.astype(np.int64)


def build(model: Model, build_dir: Path, flags: list[str]) -> tuple[Path, float]:
    """The compiled C simulation of the model: regenerate build_dir/hls/ when its sources
    differ from the IR's, compile unless a binary of these sources and flags exists.
    Returns (exe, seconds spent compiling, 0.0 when cached)."""
    build_dir = Path(build_dir)
    name = c_identifier(model.name)
    files = sources(model)
    digest = fingerprint(files)
    folder = build_dir / "hls"
    stamp = folder / STAMP
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        tcl = folder / "run_hls.tcl"
        extra = {"run_hls.tcl": tcl.read_text() if tcl.is_file()
                 else tcl_script(name, DEFAULT_PART, DEFAULT_CLOCK_NS)}
        write_sources(folder, files, extra)
    # one binary per set of flags, rebuilt when the sources change
    tag = hashlib.sha256(" ".join(flags).encode()).hexdigest()[:8]
    exe = build_dir / "hls_csim" / f"{name}_csim_{tag}"
    exe_stamp = exe.with_suffix(".sha256")
    if exe.is_file() and exe_stamp.is_file() and exe_stamp.read_text().strip() == digest:
        return exe, 0.0
    seconds = compile_csim(folder, name, exe, flags)
    write_text(exe_stamp, digest + "\n")
    return exe, seconds


def run(model: Model, build_dir: Path, codes: np.ndarray, sanitize: bool = False,
        vendor_include: Path | None = None, **_: Any) -> np.ndarray:
    """C-simulate the HLS top on integer codes [N, features] -> last accumulators [N, C]."""
    codes = check_codes(model, codes)
    exe, _ = build(model, build_dir, cxx_flags(sanitize, vendor_include))
    out, _ = simulate(exe, codes, model.layers[-1].out_features, Path(build_dir) / "hls_csim")
    return out


def hls_report(model: Model, build_dir: Path, codes: np.ndarray,
               sanitize: bool = False, vendor_include: Path | None = None) -> dict[str, Any]:
    """C simulation against the golden model on `codes`, timed; writes build_dir/hls.json."""
    build_dir = Path(build_dir)
    codes = check_codes(model, codes)
    flags = cxx_flags(sanitize, vendor_include)
    exe, compile_seconds = build(model, build_dir, flags)
    out, run_seconds = simulate(exe, codes, model.layers[-1].out_features, build_dir / "hls_csim")
    ref = golden.run_codes(model, codes)
    equal = np.all(out == ref, axis=1)
    stages = [stage(layer, i) for i, layer in enumerate(model.layers)]
    report: dict[str, Any] = {
        "samples": len(codes),
        "agree": int(equal.sum()),
        "all_equal": bool(equal.all()),
        "differing_samples": np.flatnonzero(~equal).tolist()[:100],
        "compile_seconds": round(compile_seconds, 3),
        "compiled": compile_seconds > 0,
        "run_seconds": round(run_seconds, 3),
        "top": f"{c_identifier(model.name)}_top",
        "cxx": " ".join([CXX, *flags]),
        "types": "vendor" if vendor_include else "fallback",
        "initiation_interval_cycles": model.initiation_interval,
        "layers": [{"name": s.layer.name, "pe": s.layer.folding.pe,
                    "simd": s.layer.folding.simd, "cycles": s.layer.cycles,
                    "datapath": s.datapath, "acc_bits": s.acc_bits} for s in stages],
    }
    write_json(build_dir / "hls.json", report)
    return report


# ---- command line -----------------------------------------------------------------------


def cmd_hls(a: argparse.Namespace) -> None:
    from flow.ir import load

    build_dir = Path(a.build_dir)
    model = load(build_dir)
    codes = command_codes(build_dir, a.inputs, a.limit)
    generate(model, build_dir, a.part, a.clock_ns)
    r = hls_report(model, build_dir, codes, a.sanitize, a.vendor_include)
    log.info("hls: %d of %d samples equal the golden model (compile %.1f s, run %.2f s) -> %s",
             r["agree"], r["samples"], r["compile_seconds"], r["run_seconds"],
             build_dir / "hls.json")
    if not r["all_equal"]:
        raise RuntimeError(f"hls: {r['samples'] - r['agree']} samples differ from the golden "
                           f"model, e.g. {r['differing_samples'][:10]}")


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("hls", help="generate the HLS C++ and check its C simulation "
                                   "against the golden model (writes hls.json)")
    s.add_argument("build_dir")
    s.add_argument("--inputs", help=".npy float inputs, as `qflow run` takes them "
                                    "(default: the build's test split)")
    s.add_argument("--limit", type=int, help="at most this many samples")
    s.add_argument("--part", default=DEFAULT_PART, help="FPGA part for run_hls.tcl")
    s.add_argument("--clock-ns", type=float, default=DEFAULT_CLOCK_NS,
                   help="clock period for run_hls.tcl")
    s.add_argument("--sanitize", action="store_true", help="build with ASan and UBSan")
    s.add_argument("--vendor-include", type=Path, metavar="DIR",
                   help="simulate with Vitis' ap_int.h/hls_stream.h from DIR "
                        "(e.g. $XILINX_HLS/include) instead of the fallback types")
    s.set_defaults(func=cmd_hls)

