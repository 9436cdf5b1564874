"""Pipeline depths of the rtl/ blocks, mirrored from rtl/pipeline_pkg.sv (the generator's
expected cycle counts come from these; the simulation checks measured == expected), plus
the fixed latencies of the stream plumbing and the ROM style rule; and the package's type
of a requantization's parameters, as the generator writes a value of it."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from flow.ir import Activation, Requant


@dataclass(frozen=True)
class RequantParams:
    """pipeline_pkg::requant_params_t with enable set: the requantization's parameters that
    requant.sv takes as one value (the REQUANT parameter of conv_layer, mvau, vvau,
    activation and requant), fields in the package's order. Fields the rounding does not
    use stay 0 (half_even: sum_bits, lsh_max; tflite: product_bits, rsh_min)."""

    half_even: bool
    bias_bits: int
    product_bits: int = 0
    sum_bits: int = 0
    lsh_max: int = 0
    rsh_max: int = 0
    rsh_min: int = 0
    zero_point: int = 0
    clamp_min: int = 0
    clamp_max: int = 0

    def sv(self) -> str:
        """The value in SystemVerilog: pipeline_pkg::requant_params(...), each argument after
        its field's name in a comment (Yosys reads neither '{field: value} nor a call's
        named arguments)."""
        args = ", ".join(f"/* {f.name} */ {int(getattr(self, f.name))}" for f in fields(self))
        return f"pipeline_pkg::requant_params({args})"

    def literal(self) -> str:
        """The value as one sized literal, the struct's bits (enable, the flag, then 32
        bits an int field, the first field the most significant), for Verilator's -G."""
        half_even, *ints = astuple(self)
        bits = 1 << 1 | int(half_even)
        for v in ints:
            bits = bits << 32 | (v & 0xFFFFFFFF)
        return f"{2 + 32 * len(ints)}'h{bits:x}"

TREE_STAGE_LEVELS = 2  # pipeline_pkg::TREE_STAGE_LEVELS
ROM_LATENCY = 2  # pipeline_pkg::rom_latency(), either style
# A ROM this deep or shallower is LUTs, one LUT6 a bit; a block RAM would sit mostly empty.
LOGIC_ROM_DEPTH = 64
FIFO_LATENCY = 1  # axis_fifo: a beat written in one cycle can leave in the next
DWC_LATENCY = 1  # axis_dwc: an output beat leaves the cycle after its last element arrives


def tree_latency(n: int, stage_levels: int = TREE_STAGE_LEVELS) -> int:
    """pipeline_pkg::tree_latency: registers inside an adder tree of n operands."""
    levels = (n - 1).bit_length()
    return 0 if levels == 0 or stage_levels == 0 else (levels - 1) // stage_levels


def xnor_dot_latency(simd: int) -> int:
    """pipeline_pkg::xnor_dot_latency: the popcount tree, then the sum register."""
    return tree_latency(simd) + 1


def mac_dot_latency(simd: int) -> int:
    """pipeline_pkg::mac_dot_latency: the product register, the tree, the sum register."""
    return tree_latency(simd) + 2


def thresholds_latency(n_thres: int) -> int:
    """pipeline_pkg::thresholds_latency: comparisons, the tree counting them, the code."""
    return tree_latency(n_thres) + 2


def requant_latency() -> int:
    """pipeline_pkg::requant_latency, either rounding: inputs (tflite: their sum),
    multiplier inputs, product, product plus nudged bias (tflite: high word), right shift,
    clamped code."""
    return 6


def activation_latency(act: Activation | None) -> int:
    """pipeline_pkg::activation_latency of a layer's activation (activation.sv): thresholds,
    requantization or none."""
    if act is None:
        return 0
    return requant_latency() if isinstance(act, Requant) else thresholds_latency(act.count)


def rom_style(depth: int) -> str:
    """rom.sv's STYLE for a memory of `depth` words."""
    return "logic" if depth <= LOGIC_ROM_DEPTH else "block"


def swu_rows(h: int, kh: int, sh: int) -> int:
    """pipeline_pkg::swu_rows: line buffer rows of a sliding-window unit."""
    return min(kh + sh - 1, h) + min(kh, h)
