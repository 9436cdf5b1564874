"""HLS backend: the IR as Vitis HLS C++ (templates in hls/ + a generated dataflow top).

`generate` writes build_dir/hls/: the templates, one parameter header per layer (for a
dense layer: weights packed per PE and SIMD, thresholds per PE and output fold),
`<model>_top.cpp/.hpp`, a self-checking C-simulation testbench with a few golden samples,
and `run_hls.tcl` (csim, csynth, IP export). The folding is the IR's `layer.folding`, as
in the RTL.

`run` compiles that C simulation with g++ against Xilinx's ap_int.h / hls_stream.h where
installed (Vitis' own, or the open copy scripts/setup.sh extracts: `vendor`), else against
the templates' fallback types, and returns the last layer's accumulators, which must equal
the golden model's exactly. `qflow hls` (`hls_check`) also times it and writes hls.json.

Modules: `ops` (the per-kind registry: `dense`, `conv` (window generator + MVAU, or VVAU
for depthwise), `pool` (max and average pools), `add` (residual joins)), `top` (the dataflow
top: the IR's graph as streams, forks and width converters), `generate` (the folder and its
fingerprint), `csim` (g++, the command), `vendor` (which ap_int/hls::stream headers).
"""

from flow.backends.hls.cpp import AP_INT_MAX_W, MAX_BITS, c_identifier, cpp_type
from flow.backends.hls.csim import CXX, CXXFLAGS, build, cxx_flags, hls_check, register_cli, run, run_timed
from flow.backends.hls.generate import generate, headers, sources, template_dir, template_sources
from flow.backends.hls.ops import OPS as LAYER_KINDS
from flow.backends.hls.ops import LayerStage, stage, stages

# activation forms it builds
ACTIVATIONS = ("thresholds", "requant", "none")

__all__ = [
    "ACTIVATIONS",
    "LAYER_KINDS",
    "AP_INT_MAX_W", "CXX", "CXXFLAGS", "MAX_BITS", "LayerStage", "build", "c_identifier",
    "cpp_type", "cxx_flags", "generate", "headers", "hls_check", "register_cli", "run", "run_timed",
    "sources", "stage", "stages", "template_dir", "template_sources",
]
