"""Fixed-point requantization, the IR's second activation form, in one of two roundings.

`rounding == "half_even"` (QONNX's Quant: one rounding, half to even), the default:

    y[c] = clamp(zero_point + RHE((acc[c] * multiplier[c] + bias[c]) / 2^shift[c]),
                 clamp_min, clamp_max)
    RHE(p / 2^n)  = (p + 2^(n-1) - 1 + ((p >> n) & 1)) >> n   (arithmetic shifts)

with multiplier in [0, 2^31), shift (a right shift) in 1..62 and the bias in the product's
units, int64: a bias with n fractional bits, so that a float bias and a factor that is not a
power of two are carried at the product's precision and the float graph's own rounding is
applied once. |acc * multiplier + bias| stays below 2^62 (check_range), so every backend
computes it exactly in 64-bit (or narrower, sized from the bounds) integers. With
power-of-two scales it is the float graph's function by construction; otherwise lowering
solves the bias from the float graph's step boundaries (flow/lower/requant.py).

`rounding == "tflite"` (TFLite's integer semantics, for a user who asks for them):

    y[c] = clamp(zero_point + MBQM(acc[c] + bias[c], multiplier[c], shift[c]),
                 clamp_min, clamp_max)

MBQM is TFLite's MultiplyByQuantizedMultiplier in its reference (double-rounding) form,
which CMSIS-NN's arm_nn_requantize and ESP-NN also compute:

    MBQM(x, M, s) = RDBPOT(SRDHM(x * 2^max(s, 0), M), max(-s, 0))
    SRDHM(a, b)   = (a * b + (2^30 if a * b >= 0 else 1 - 2^30)) / 2^31, truncated toward
                    zero; saturates to 2^31 - 1 for a = b = -2^31
    RDBPOT(x, e)  = (x >> e) + ((x & (2^e - 1)) > ((2^e - 1) >> 1) + (x < 0))

so a real factor m = M * 2^(s - 31), M in [2^30, 2^31), is applied with two roundings:
the high product's (SRDHM: ties toward +infinity) and the shift's (RDBPOT: ties away from
zero). Every backend computes exactly this function; `flow.golden.requant` is its
reference implementation. All intermediate values are int32: the IR checks that
acc + bias and its left shift fit.

Against the float graph: QONNX's Quant rounds half to even, so even with power-of-two
scales an output whose exact value is a tie (x.5) can differ by one step, and for factors
below 1/2 the double rounding moves values within 2^-e of a half (for a right shift e)
across it, one step: SRDHM rounds x * M / 2^31 to an integer before the shift. Both are one step at most, and
verify counts them per layer (flow/verify.py); with float scales the bias rounded to whole
accumulator units adds up to half the factor. Thresholds reproduce the float graph
exactly; a requantized layer's differences are measured, never assumed away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from flow.datatypes import DataType, dtype
from flow.ir.layer import Get, IRError, Put

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SHIFT_MIN, SHIFT_MAX = -31, 30  # tflite
RSHIFT_MIN, RSHIFT_MAX = 1, 62  # half_even
PRODUCT_LIMIT = 2**62  # half_even: |acc * multiplier + bias| below it
ROUNDINGS = ("half_even", "tflite")


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = M * 2^(shift - 31) with M in [2^30, 2^31)
    (M = 0 for real = 0); shifts below -31 underflow to M = 0."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"requantization factor {real} must be finite and non-negative")
    if real == 0:
        return 0, 0
    frac, shift = math.frexp(real)  # real = frac * 2^shift, frac in [0.5, 1)
    m = round(frac * 2**31)
    if m == 2**31:  # rounding reached the next power of two
        m, shift = m // 2, shift + 1
    if shift < SHIFT_MIN:
        return 0, 0
    if shift > SHIFT_MAX:
        raise ValueError(f"requantization factor {real} is too large (2^{shift})")
    return m, shift


def half_even_multiplier(real: float) -> tuple[int, int]:
    """real ~ M / 2^n with M in [2^30, 2^31) and n in RSHIFT_MIN..RSHIFT_MAX, the half_even
    form's factor (M = 0, n = RSHIFT_MAX where real is below its resolution)."""
    m, s = quantize_multiplier(real)
    if m == 0:
        return 0, RSHIFT_MAX
    if 31 - s > RSHIFT_MAX:  # below 2^-32: keep the top bits that remain
        m, s = m >> (31 - s - RSHIFT_MAX), 31 - RSHIFT_MAX
    return m, 31 - s


@dataclass
class Requant:
    """Per-output-channel requantization of the accumulator (see the module docstring)."""

    bias: np.ndarray  # int64 [C]: half_even: added to the product; tflite: to the accumulator
    multiplier: np.ndarray  # int64 [C]: half_even: [0, 2^31); tflite: [2^30, 2^31) or 0
    shift: np.ndarray  # int64 [C]: half_even: the right shift, 1..62; tflite: -31..30
    zero_point: int
    clamp_min: int  # the quantizer's code range (a narrow one stops short of the type's)
    clamp_max: int
    out_dtype: DataType
    rounding: str  # "half_even" or "tflite"

    kind = "requant"

    def check(self, at: str, channels: int) -> None:
        if self.rounding not in ROUNDINGS:
            raise IRError(f"{at}: requantization rounding {self.rounding!r} is not one of "
                          f"{', '.join(ROUNDINGS)}")
        for name in ("bias", "multiplier", "shift"):
            a = getattr(self, name)
            if a.shape != (channels,):
                raise IRError(f"{at}: requantization {name} has shape {a.shape}, not "
                              f"({channels},)")
        m, s = self.multiplier, self.shift
        if self.rounding == "half_even":
            if np.any((m < 0) | (m > INT32_MAX)):
                raise IRError(f"{at}: requantization multipliers must lie in [0, 2^31)")
            if np.any((s < RSHIFT_MIN) | (s > RSHIFT_MAX)):
                raise IRError(f"{at}: requantization shifts must lie in "
                              f"{RSHIFT_MIN}..{RSHIFT_MAX}")
        else:
            if np.any((m != 0) & ((m < 2**30) | (m > INT32_MAX))):
                raise IRError(f"{at}: requantization multipliers must be 0 or in "
                              "[2^30, 2^31)")
            if np.any((s < SHIFT_MIN) | (s > SHIFT_MAX)):
                raise IRError(f"{at}: requantization shifts must lie in "
                              f"{SHIFT_MIN}..{SHIFT_MAX}")
        if self.out_dtype.is_bipolar:
            raise IRError(f"{at}: requantization needs an integer output type, not BIPOLAR")
        if not self.out_dtype.min <= self.zero_point <= self.out_dtype.max:
            raise IRError(f"{at}: output zero point {self.zero_point} outside {self.out_dtype}")
        if self.clamp_min > self.clamp_max or not self.out_dtype.contains(self.clamp_min,
                                                                          self.clamp_max):
            raise IRError(f"{at}: clamp [{self.clamp_min}, {self.clamp_max}] is not a range "
                          f"of {self.out_dtype}")

    def check_range(self, at: str, acc_min: int, acc_max: int) -> None:
        """half_even: |acc * multiplier + bias| < 2^62 for every accumulator value;
        tflite: acc + bias, shifted left, must stay in int32."""
        if self.rounding == "half_even":
            ends = [acc * int(m) + int(b) for m, b in zip(self.multiplier, self.bias,
                                                          strict=True)
                    for acc in (acc_min, acc_max)]
            if ends and max(abs(e) for e in ends) >= PRODUCT_LIMIT:
                raise IRError(f"{at}: accumulator [{acc_min}, {acc_max}] times the "
                              "multiplier plus the bias reaches 2^62")
            return
        lo = acc_min + int(self.bias.min(initial=0))
        hi = acc_max + int(self.bias.max(initial=0))
        left = 2 ** int(np.maximum(self.shift, 0).max(initial=0))
        if lo * left < INT32_MIN or hi * left > INT32_MAX:
            raise IRError(f"{at}: accumulator plus bias [{lo}, {hi}] times the left shift "
                          f"{left} leaves int32")

    def to_json(self, name: str, put: Put) -> dict[str, Any]:
        return {"kind": self.kind, "bias": put(f"{name}.requant_bias", self.bias),
                "multiplier": put(f"{name}.requant_multiplier", self.multiplier),
                "shift": put(f"{name}.requant_shift", self.shift),
                "zero_point": int(self.zero_point), "clamp_min": int(self.clamp_min),
                "clamp_max": int(self.clamp_max), "out_dtype": self.out_dtype.name,
                "rounding": self.rounding}

    @classmethod
    def from_json(cls, d: dict[str, Any], get: Get) -> Requant:
        return cls(bias=get(d["bias"]).astype(np.int64),
                   multiplier=get(d["multiplier"]).astype(np.int64),
                   shift=get(d["shift"]).astype(np.int64), zero_point=int(d["zero_point"]),
                   clamp_min=int(d["clamp_min"]), clamp_max=int(d["clamp_max"]),
                   out_dtype=dtype(d["out_dtype"]), rounding=str(d["rounding"]))
