"""A layer's activation as the firmware stores it, shared by every kind whose accumulators
go through one (dense and conv windows, the add): thresholds (QNN_OUT_INT8, or QNN_OUT_BITS
for a next XNOR kernel) or the requantization (QNN_OUT_REQUANT), with the accumulator's
storage corrections folded in, and the C of those constants (qnn.h: qnn_dense_t's
activation fields, qnn_requant_t)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow.backends.firmware.common import (
    FirmwareError,
    c_array,
    int32_or_none,
    product_bias,
    requant_bias,
    storage_offset,
)
from flow.backends.thresholds import accumulator_range, hardware_thresholds
from flow.ir import AddLayer, DenseLayer, Requant


@dataclass(frozen=True)
class StoredActivation:
    out_kind: str  # INT8 | BITS | REQUANT
    thresholds: np.ndarray | None  # int32 [out, count], the corrections folded in
    bias: np.ndarray | None  # int32 [out] added to the accumulator (half_even: stored_bias)
    base: int  # the first level as stored
    step: int
    requant: Requant | None


def stored_activation(layer: DenseLayer | AddLayer, bias: np.ndarray | None, at: str,
                      bits_out: bool) -> StoredActivation:
    """The layer's activation (it has one) on an accumulator that lacks `bias` (the storage
    corrections, int64 per channel, or None) of the true one."""
    act = layer.activation
    assert act is not None
    out_t = act.out_dtype
    if bits_out and not out_t.is_bipolar:
        raise FirmwareError(f"{at}: {out_t} outputs cannot be stored as bits")
    if isinstance(act, Requant):
        return StoredActivation("REQUANT", None, requant_bias(act, bias, at), 0, 0, act)
    # beyond the reachable range a threshold is always or never met: clipped to one past it,
    # which must still be an int32
    if accumulator_range(layer)[1] + 1 > 2**31 - 1:
        raise FirmwareError(f"{at}: accumulator reaches INT32_MAX, no threshold above it")
    t = hardware_thresholds(layer)
    if bias is not None:  # acc + bias >= t <=> acc >= t - bias: one add less per channel
        t, bias = t - bias[:, None], None
        if t.min() < -(2**31) or t.max() >= 2**31:
            raise FirmwareError(f"{at}: thresholds minus bias outside int32")
    base = act.base - storage_offset(out_t)
    top = base + act.step * act.count
    if not (min(base, top) >= -(2**15) and max(base, top) < 2**15 and abs(act.step) < 2**15):
        raise FirmwareError(f"{at}: activation levels do not fit int16")
    if act.count > 0xFFFF:
        raise FirmwareError(f"{at}: {act.count} thresholds per channel")
    return StoredActivation("BITS" if bits_out else "INT8", t.astype(np.int32),
                            int32_or_none(bias, at), base, act.step, None)


def stored_bias(requant: Requant | None, bias: np.ndarray | None, at: str
                ) -> np.ndarray | None:
    """The bias as stored: int32 added to the accumulator, or half_even's int64 product bias
    (qnn_requant_t, `product_bias`) with `bias` folded in."""
    if requant is None or requant.rounding != "half_even":
        return bias
    return product_bias(requant, bias, at)


def is_half_even(requant: Requant | None) -> bool:
    return requant is not None and requant.rounding == "half_even"


def activation_arrays_c(i: int, thresholds: np.ndarray | None, bias: np.ndarray | None,
                        requant: Requant | None) -> str:
    """C definitions of layer i's activation arrays: thresholds qflow_t<i>, the stored bias
    qflow_b<i> (stored_bias), the requantization's multipliers qflow_m<i> and shifts
    qflow_s<i>."""
    c = []
    if thresholds is not None:
        c.append(c_array("int32_t", f"qflow_t{i}", thresholds))
    if bias is not None:
        c.append(c_array("int64_t" if is_half_even(requant) else "int32_t", f"qflow_b{i}", bias))
    if requant is not None:
        c.append(c_array("int32_t", f"qflow_m{i}", requant.multiplier))
        c.append(c_array("int8_t", f"qflow_s{i}", requant.shift))
    return "".join(c)


def requant_c(i: int, requant: Requant | None) -> str:
    """The initializer of layer i's qnn_requant_t: zero point and clamp as stored."""
    r = requant
    if r is None:
        return "{0, 0, 0, 0, 0, 0, 0}"
    off = storage_offset(r.out_dtype)
    bias, rounding = (f"qflow_b{i}", "HALF_EVEN") if is_half_even(r) else ("0", "TFLITE")
    return (f"{{qflow_m{i}, qflow_s{i}, {bias}, {r.zero_point - off}, "
            f"{r.clamp_min - off}, {r.clamp_max - off}, QNN_ROUND_{rounding}}}")
