"""A requantized layer as the hardware computes it (rtl/requant.sv, hls/qflow_requant.hpp),
shared by the RTL and HLS generators: the widths of its per-channel parameters and of its
datapath, sized from the IR's bounds.

half_even: acc * m takes ACC_BITS + 32 signed bits at most; `product_bits` holds both
acc * m and acc * m + bias for every channel and accumulator value (below 2^62 by
flow.ir.Requant.check_range), `bias_bits` the bias (in the product's units) and `rsh_max`
is the largest right shift (1..62).

tflite: acc + bias takes `sum_bits` over every channel; shifted left by at most `lsh_max` it stays
within int32 (flow.ir.Requant.check_range), so sum_bits + lsh_max <= 32: a value needing
sum_bits signed bits has a magnitude of at least 2^(sum_bits - 2), and times 2^lsh_max it
is below 2^31. The multiplier is 0 or in [2^30, 2^31): 31 unsigned bits. The output's range
must lie in int32 (the RTL's parameters are ints).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.datatypes import bits_for_range
from flow.ir import AddLayer, DenseLayer, IRError, Requant
from flow.ir.requant import INT32_MAX, INT32_MIN

MULTIPLIER_BITS = 31


@dataclass(frozen=True)
class HardwareRequant:
    """One layer's requantization with the widths its hardware is built with."""

    requant: Requant
    bias_bits: int  # signed
    sum_bits: int  # tflite: acc + bias, signed (half_even: 0)
    lsh_max: int  # tflite: the largest left shift of any channel (half_even: 0)
    rsh_max: int  # the largest right shift
    product_bits: int = 0  # half_even: acc * m and acc * m + bias, signed (tflite: 0)

    @property
    def half_even(self) -> bool:
        return self.requant.rounding == "half_even"

    @property
    def lsh_bits(self) -> int:
        return max(1, self.lsh_max.bit_length())

    @property
    def rsh_bits(self) -> int:
        return max(1, self.rsh_max.bit_length())

    @property
    def left(self) -> np.ndarray:
        return np.zeros_like(self.requant.shift) if self.half_even \
            else np.maximum(self.requant.shift, 0)

    @property
    def right(self) -> np.ndarray:
        return self.requant.shift if self.half_even else np.maximum(-self.requant.shift, 0)


def hardware_requant(layer: DenseLayer | AddLayer) -> HardwareRequant:
    """The layer's requantization (an IRError naming the layer if it has none, or if its
    output range leaves int32)."""
    r = layer.activation
    at = f"layer {layer.name} (from {layer.source or '?'})"
    if not isinstance(r, Requant):
        raise IRError(f"{at}: no requantization")
    out = r.out_dtype
    if out.min < INT32_MIN or out.max > INT32_MAX:
        raise IRError(f"{at}: requantized output type {out} leaves int32")
    bmin, bmax = int(r.bias.min()), int(r.bias.max())
    if r.rounding == "half_even":
        ends = [v for m, b in zip(r.multiplier.tolist(), r.bias.tolist(), strict=True)
                for acc in (layer.acc_min, layer.acc_max) for v in (acc * m, acc * m + b)]
        return HardwareRequant(
            requant=r, bias_bits=bits_for_range(min(bmin, -1), max(bmax, 0)), sum_bits=0,
            lsh_max=0, rsh_max=int(r.shift.max()),
            product_bits=bits_for_range(min(min(ends), -1), max(max(ends), 0)))
    return HardwareRequant(
        requant=r, bias_bits=bits_for_range(min(bmin, -1), max(bmax, 0)),
        sum_bits=bits_for_range(min(layer.acc_min + bmin, -1), max(layer.acc_max + bmax, 0)),
        lsh_max=int(np.maximum(r.shift, 0).max()), rsh_max=int(np.maximum(-r.shift, 0).max()))
