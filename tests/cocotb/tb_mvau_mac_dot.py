"""cocotb bench of rtl/compute/mvau_mac_dot.sv against a Python model: per PE, the dot product of
SIMD inputs with SIMD weights, each operand signed, unsigned or BIPOLAR (1 bit, 1 = +1).
Random operands every cycle (each PE its own input) plus every pairing of all-min and
all-max operands; each sum checked mac_dot_latency cycles later."""

from __future__ import annotations

import random
from typing import Any

import cocotb
from tb_common import first_difference, job, pack, pipeline_outputs, unpack, value_range

from flow.backends.rtl import mac_dot_latency


@cocotb.test()
async def mac_sums(dut: Any) -> None:
    j = job()
    pe, simd = j["PE"], j["SIMD"]
    x_bits, w_bits = j["X_BITS"], j["W_BITS"]
    x_range = value_range(x_bits, j["X_SIGNED"], j["X_BIPOLAR"])
    w_range = value_range(w_bits, j["W_SIGNED"], j["W_BIPOLAR"])
    rng = random.Random(j["seed"])
    n = pe * simd

    def draw(r: tuple[int, int], bipolar: bool) -> list[int]:
        return [rng.choice(r) if bipolar else rng.randint(*r) for _ in range(n)]

    pairs = [([xv] * n, [wv] * n) for xv in x_range for wv in w_range]
    pairs += [(draw(x_range, j["X_BIPOLAR"]), draw(w_range, j["W_BIPOLAR"]))
              for _ in range(j["vectors"])]

    def code(values: list[int], bits: int, bipolar: bool) -> int:
        return pack([int(v > 0) for v in values], 1) if bipolar else pack(values, bits)

    sum_bits = x_bits + w_bits + 1 + (simd - 1).bit_length()
    got = await pipeline_outputs(
        dut, [{"x": code(x, x_bits, j["X_BIPOLAR"]), "w": code(w, w_bits, j["W_BIPOLAR"])}
              for x, w in pairs], "sum", mac_dot_latency(simd))
    want = [[sum(a * b for a, b in zip(x[p * simd:(p + 1) * simd], w[p * simd:(p + 1) * simd],
                                       strict=True)) for p in range(pe)] for x, w in pairs]
    diff = first_difference([unpack(g, pe, sum_bits, True) for g in got], want)
    assert not diff, f"dot products: {diff}"
