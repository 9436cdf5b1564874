"""The IR's requantization (TFLite's MultiplyByQuantizedMultiplier, double rounding) against
a big-integer reference written from TFLite's C definitions, on random and extreme values."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.datatypes import dtype
from flow.golden.requant import (
    multiply_by_quantized_multiplier,
    requantize,
    saturating_rounding_doubling_high_mul,
)
from flow.ir import IRError, Requant, load, quantize_multiplier
from flow.synthetic import random_codes, random_model
from tests.helpers.reference import I32_MAX, I32_MIN, ref_mbqm, ref_srdhm


def test_srdhm_edges() -> None:
    a = np.array([I32_MIN, I32_MIN, I32_MAX, -1, 1, 0, -(2**30), 12345, -12345])
    b = np.array([I32_MIN, I32_MAX, I32_MAX, I32_MAX, 2**30, I32_MAX, 2**30, 2**30 + 1, 2**30 + 1])
    got = saturating_rounding_doubling_high_mul(a, b)
    assert got.tolist() == [ref_srdhm(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert got[0] == I32_MAX  # the one saturating case


@pytest.mark.parametrize("seed", range(4))
def test_mbqm_equals_big_integer_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    m = rng.integers(2**30, 2**31, size=n)
    m[:4] = [2**30, I32_MAX, 2**30 + 1, I32_MAX - 1]  # the multiplier's ends
    shift = rng.integers(-31, 1, size=n)
    shift[4:8] = [0, -31, -1, -30]
    x = rng.integers(I32_MIN, I32_MAX + 1, size=n)
    x[8:14] = [I32_MIN, I32_MAX, -1, 0, 1, -(2**30)]
    # left shifts only where x * 2^shift stays in int32
    left = rng.integers(0, 8, size=n)
    small = rng.integers(-(2**23), 2**23, size=n)
    use_left = rng.random(n) < 0.3
    shift = np.where(use_left, left, shift)
    x = np.where(use_left, small, x)
    got = multiply_by_quantized_multiplier(x, m, shift)
    want = [ref_mbqm(int(a), int(b), int(s)) for a, b, s in zip(x, m, shift, strict=True)]
    assert got.tolist() == want


def test_tie_rounding_of_each_step() -> None:
    """SRDHM rounds ties toward +infinity; RDBPOT away from zero; together they round twice."""
    x = np.array([3, -3, 1, -1])
    half = np.full(4, 2**30)  # with shift 0: a factor of 1/2 inside SRDHM
    assert multiply_by_quantized_multiplier(x, half, np.zeros(4, np.int64)).tolist() == \
        [2, -1, 1, 0]
    # factor 1/2 as 2^30 * 2^(1 - 31) then a right shift of 1 by RDBPOT: 1.5 -> 2, -1.5 -> -2
    assert multiply_by_quantized_multiplier(x * 2, half, np.full(4, -1)).tolist() == \
        [2, -2, 1, -1]
    # double rounding: 1 * 0.25 = 0.25 -> SRDHM gives 1 (0.5 up), RDBPOT 1 (0.5 away) -> 1
    assert multiply_by_quantized_multiplier(np.array([1]), half[:1], np.array([-1]))[0] == 1


@pytest.mark.parametrize("real", [1.0, 2.0, 0.5, 0.25, 3.0, 1e-6, 0.7071067811865476,
                                  1.9999999, 2.0**-33, 2.0**10])
def test_quantize_multiplier(real: float) -> None:
    m, shift = quantize_multiplier(real)
    if real < 2.0**-32:
        assert (m, shift) == (0, 0)
        return
    assert 2**30 <= m < 2**31 and -31 <= shift <= 30
    assert math.isclose(m * 2.0 ** (shift - 31), real, rel_tol=2**-30)
    if math.log2(real).is_integer():
        assert m == 2**30  # a power of two is represented exactly
    if real >= 1 and real.is_integer():  # an integer factor: MBQM multiplies exactly
        x = np.arange(-1000, 1000)
        got = multiply_by_quantized_multiplier(x, np.full_like(x, m), np.full_like(x, shift))
        assert np.array_equal(got, x * int(real))


def test_requantize_clamps_and_offsets() -> None:
    r = Requant(rounding="tflite", bias=np.array([10, -10]), multiplier=np.array([2**30, 2**30]),
                shift=np.array([1, -2]), zero_point=3, clamp_min=0, clamp_max=15,
                out_dtype=dtype("UINT4"))
    acc = np.array([[0, 0], [100, 100], [-100, -100]])
    # channel 0: (acc + 10) * 1 + 3, channel 1: (acc - 10) / 8 rounded + 3; clamped to 0..15
    assert requantize(acc, r).tolist() == [[13, 2], [15, 14], [0, 0]]


def test_requant_model_round_trips_and_validates() -> None:
    model = random_model([12, 7, 5], ["INT4", "INT4"], ["INT8"], "UINT4", seed=2)
    layer = model.layers[0]
    c = layer.out_channels
    layer.activation = Requant(rounding="tflite", bias=np.arange(c) - 3, multiplier=np.full(c, 1518500250),
                               shift=np.full(c, -5), zero_point=-3, clamp_min=-127,
                               clamp_max=127, out_dtype=dtype("INT8"))
    model.validate("test")
    codes = random_codes(model, 30)
    want = golden.run_codes(model, codes)
    hidden = golden.trace_codes(model, codes)[0]
    acc = codes @ layer.weights.T
    assert np.array_equal(hidden, requantize(acc, layer.activation))
    with tempfile.TemporaryDirectory() as d:
        model.save(d)
        again = load(d)
        assert isinstance(again.layers[0].activation, Requant)
        assert np.array_equal(golden.run_codes(again, codes), want)
    layer.activation = Requant(rounding="tflite", bias=np.full(c, 2**31 - 10), multiplier=np.full(c, 2**30),
                               shift=np.zeros(c, np.int64), zero_point=0,
                               clamp_min=-128, clamp_max=127, out_dtype=dtype("INT8"))
    with pytest.raises(IRError, match="leaves int32"):
        model.validate("test")
    layer.activation = Requant(rounding="tflite", bias=np.zeros(c, np.int64), multiplier=np.full(c, 2**29),
                               shift=np.zeros(c, np.int64), zero_point=0,
                               clamp_min=-128, clamp_max=127, out_dtype=dtype("INT8"))
    with pytest.raises(IRError, match=r"multipliers must be 0 or in \[2\^30, 2\^31\)"):
        model.validate("test")


def test_lowering_requantizes_on_request(w8a8_onnx: Path) -> None:
    from flow.lower import lower
    from flow.reference import qonnx_outputs

    x = np.random.default_rng(1).random((120, 1, 8, 8), dtype=np.float32)
    ref = qonnx_outputs(w8a8_onnx, x)
    exact = lower(w8a8_onnx, activation="thresholds")
    assert all(not isinstance(la.activation, Requant) for la in exact.layers)
    assert np.array_equal(golden.run(exact, x).reshape(len(x), -1), ref)
    ir = lower(w8a8_onnx, activation="requant")
    assert [type(la.activation).__name__ for la in ir.layers] == ["Requant", "Requant", "NoneType"]
    requantized = ir.meta["requantized_layers"]
    assert set(requantized) == {"dense0", "dense1"}
    # float scales (batch norm): the requantization differs from the float graph's
    # quantizer somewhere in the reachable range, and the IR says so
    assert set(ir.meta["inexact_layers"]) == {"dense0", "dense1"}
    assert all(not m["proven_exact"] and m["max_step_difference"] >= 1
               for m in requantized.values())
    out = golden.run(ir, x).reshape(len(x), -1)
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.97
    assert np.mean(np.all(out == ref, axis=1)) >= 0.9
    # auto (the default) requantizes only where that is proven equal: here nowhere
    auto = lower(w8a8_onnx, activation="auto")
    assert all(not isinstance(la.activation, Requant) for la in auto.layers)
    assert auto.meta["inexact_layers"] == [] and "requantized_layers" not in auto.meta
    assert np.array_equal(golden.run(auto, x).reshape(len(x), -1), ref)


def test_forced_requantization_of_a_binary_activation_is_refused(tmp_path: Path) -> None:
    import torch

    from flow.export import export_qonnx
    from flow.lower import LoweringError, lower
    from tests.helpers.models import MLP_VARIANTS, random_mlp

    path = export_qonnx(random_mlp(MLP_VARIANTS["w1a1-in8"], seed=1), torch.rand(1, 1, 8, 8),
                        tmp_path / "b.onnx")
    with pytest.raises(LoweringError, match=r"\(BipolarQuant\): layer dense0: cannot be "
                                            r"requantized \(a BIPOLAR output\)"):
        lower(path, activation="requant")
    assert all(not isinstance(la.activation, Requant)
               for la in lower(path, activation="auto").layers)


def test_compile_and_verify_measure_the_requantization(w8a8_onnx: Path, tmp_path: Path) -> None:
    import json

    from flow.cli import main
    from flow.export import compile_onnx
    from flow.verify import verify

    compile_onnx(w8a8_onnx, tmp_path / "b", {"target_cycles": 64}, {"name": "digits"},
                 activation="requant")
    built = {p.name for p in (tmp_path / "b").iterdir()}
    assert {"ir.json", "rtl", "hls", "firmware"} <= built  # every backend builds it
    r = verify(tmp_path / "b", limit=40)
    measured = r["requantization"]
    assert set(measured["layers"]) == {"dense0", "dense1"}
    for m in measured["layers"].values():  # float scales (batch norm): within one step
        assert not m["power_of_two"] and m["step_bound"] == 1
        assert m["samples"] == 40 and m["max_step_difference"] <= 1
        assert m["equal_samples"] >= 1 and m["equal_share"] == m["equal_samples"] / 40
    executor = r["agreement"]["qonnx_executor"]
    assert measured["argmax_equal"] == executor["argmax_equal"] >= 38
    assert executor["rounding"]["unexplained_samples"] == []
    assert executor["explained"] and r["passed"]
    assert main(["check", str(tmp_path / "b"), "--limit", "5"]) == 0
    checks = json.loads((tmp_path / "b" / "check.subset.json").read_text())["checks"]
    assert checks["verify"]["status"] in ("equal", "explained")
    # the RTL and HLS simulations and the firmware (host and RV32) equal golden
    assert all(checks[k]["status"] == "equal" for k in ("sim", "hls", "firmware"))
