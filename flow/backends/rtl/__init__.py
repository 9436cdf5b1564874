"""RTL backend: a streaming SystemVerilog accelerator from the rtl/ blocks.

`generate` writes build_dir/rtl/: the model's top (top.py: one stage per layer, joined by
`axis_dwc` width converters and `axis_fifo` buffers), the stages' memory images ($readmemh,
named relative to rtl/), copies of the blocks the top uses, manifest.json and
fingerprint.json: a self-contained folder (generate.py). `run` / `simulate` build
the top with Verilator and drive it with cocotb (harness.py), regenerating rtl/ first when
its stamp does not match the IR.

Modules: one per layer kind with everything kind-specific (dense.py; conv.py and pool.py,
whose stages put a sliding-window unit before an mvau or a max reducer, window.py), found
through ops.OPS; top.py (the model's top), generate.py, pipeline.py (rtl/pipeline_pkg.sv's
latencies), blocks.py (where a block is in rtl/'s groups), harness.py and stream_bench.py
(Verilator + cocotb), sim.py (`qflow sim`).

Stream formats: element k of a beat sits at bits [k*bits, (k+1)*bits) (flow.packing); the
input carries the first layer's codes, the output the last layer's accumulators.

Public API (tests and bench/ use these names only):
    generate(model, build_dir) -> Path        build_dir/rtl/
    up_to_date(model, build_dir) -> bool      rtl/ made from this IR, blocks and generator
    run(model, build_dir, codes) -> ndarray   the last layer's accumulators
    simulate(model, build_dir, codes, valid_prob, ready_prob, seed)
        -> ({"rtl": accumulators}, timing details of sim.json)
    simulate_codes(...) -> (accumulators, FrameTiming)
    check(build_dir, inputs, limit) -> dict   `qflow sim`: writes build_dir/sim.json
    register_cli(sub)
    block_path(name), all_blocks() (blocks.py: rtl/'s groups), block_sources()
    the harness: verilator_env, build, build_block, build_stream, run_cocotb, run_bench,
        StreamResult; override_value (a parameter as Verilator's -G takes it)
    the latencies of pipeline.py, and RequantParams (a value of requant.sv's REQUANT
        parameter); the op modules dense, conv and pool
"""

from __future__ import annotations

from flow.backends.rtl import conv, dense, pool
from flow.backends.rtl.blocks import all_blocks, block_path
from flow.backends.rtl.generate import generate, up_to_date
from flow.backends.rtl.harness import (
    StreamResult,
    build,
    build_block,
    build_stream,
    run_bench,
    run_cocotb,
    verilator_env,
)
from flow.backends.rtl.ops import OPS as LAYER_KINDS
from flow.backends.rtl.ops import block_sources
from flow.backends.rtl.pipeline import (
    ROM_LATENCY,
    RequantParams,
    mac_dot_latency,
    requant_latency,
    thresholds_latency,
    tree_latency,
    xnor_dot_latency,
)
from flow.backends.rtl.sim import (
    FrameTiming,
    check,
    register_cli,
    run,
    simulate,
    simulate_codes,
)
from flow.backends.rtl.stage import override_value

# activation forms it builds
ACTIVATIONS = ("thresholds", "requant", "none")

__all__ = [
    "ACTIVATIONS",
    "LAYER_KINDS",
    "up_to_date",
    "ROM_LATENCY", "FrameTiming", "RequantParams", "StreamResult", "all_blocks", "block_path",
    "block_sources", "build", "build_block", "build_stream", "override_value",
    "check", "conv", "dense", "pool", "generate", "mac_dot_latency", "register_cli",
    "requant_latency", "run", "run_bench", "run_cocotb", "simulate", "simulate_codes",
    "thresholds_latency", "tree_latency", "verilator_env", "xnor_dot_latency",
]
