"""`auto` never loses exactness: a layer is requantized only where its integer function is
proven equal to the float graph's quantizer on every reachable accumulator
(`requant_matches_thresholds`); forced requantization lists an unequal layer inexact with its
largest difference; a ReLU that the quantizer's clamp subsumes stays requantizable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from flow import golden
from flow.buildfolder import mark
from flow.datatypes import dtype
from flow.export import export_qonnx
from flow.golden.exact import threshold_levels
from flow.golden.requant import requantize
from flow.ir import Requant, Thresholds, half_even_multiplier, quantize_multiplier
from flow.lower import LoweringError, lower
from flow.lower.requant import closest_requantization, requant_matches_thresholds, solve_bias
from flow.reference import qonnx_outputs, qonnx_trace
from flow.verify import rounding, verify
from tests import fuzz, fuzz_space
from tests.helpers.onnx import quant

QD = "qonnx.custom_op.general"


def brute_difference(act: Requant, t: np.ndarray, base: int, lo: np.ndarray, hi: np.ndarray
                     ) -> np.ndarray:
    """Per channel, the largest |requantization - thresholds| over every accumulator."""
    span = int((hi - lo).max()) + 1
    acc = np.minimum(lo[None, :] + np.arange(span)[:, None], hi[None, :])
    want = threshold_levels(acc, t, base, 1)
    return np.abs(requantize(acc, act) - want).max(axis=0)


def exact_thresholds(f: np.ndarray, lo: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Thresholds [C, K] of a non-decreasing code function given on every accumulator
    (f [span, C] from lo): the first accumulator reaching each level, span + lo if never."""
    span = f.shape[0]
    reached = f[:, :, None] >= levels[None, None, :]  # [span, C, K]
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), span)
    return lo[:, None] + first


def random_requant(rng: np.random.Generator, channels: int) -> Requant:
    po2 = rng.random(channels) < 0.4  # exact factors: ties reachable
    multiplier = np.where(po2, 2**30, rng.integers(2**30, 2**31, channels))
    zero_point = int(rng.integers(-5, 6))
    lo_code = int(rng.integers(-128, 0))
    return Requant(rounding="tflite", bias=rng.integers(-40, 41, channels), multiplier=multiplier,
                   shift=rng.integers(-6, 3, channels), zero_point=zero_point,
                   clamp_min=lo_code, clamp_max=int(rng.integers(lo_code + 1, 128)),
                   out_dtype=dtype("INT8"))


@pytest.mark.parametrize("seed", range(12))
def test_matches_thresholds_equals_brute_force(seed: int) -> None:
    """Random requantizations against thresholds of their own function (equal), of the
    float rounding half to even (ties and double rounding differ) and shifted by one; the
    boundary check gives every channel's verdict and largest difference as enumeration does."""
    rng = np.random.default_rng(seed)
    channels = 8
    act = random_requant(rng, channels)
    lo = rng.integers(-300, 100, channels)
    hi = lo + rng.integers(0, 400, channels)
    lo[0], hi[0] = -10**4, -9000  # entirely below the clamp (or constant)
    lo[1], hi[1] = 9000, 10**4  # entirely above it
    span = int((hi - lo).max()) + 1
    acc = np.minimum(lo[None, :] + np.arange(span)[:, None], hi[None, :])
    levels = np.arange(act.clamp_min + 1, act.clamp_max + 1)
    factor = act.multiplier * 2.0 ** (act.shift - 31)
    real = np.clip(np.round((acc + act.bias) * factor) + act.zero_point,
                   act.clamp_min, act.clamp_max)  # np.round: half to even, as QONNX's Quant
    own = exact_thresholds(requantize(acc, act), lo, levels)
    rounded = exact_thresholds(real, lo, levels)
    for t in (own, rounded, own + 1, rounded - 1):
        ok, diff = requant_matches_thresholds(act, t, act.clamp_min, lo, hi)
        want = brute_difference(act, t, act.clamp_min, lo, hi)
        assert np.array_equal(diff, want) and np.array_equal(ok, want == 0)
    assert requant_matches_thresholds(act, own, act.clamp_min, lo, hi)[0].all()


def test_ties_clamps_and_the_bias_refinement() -> None:
    """Factor 1/2: TFLite rounds the tie 0.5 up where QONNX rounds it to 0 (one step);
    a constant channel clamped below or above its whole range agrees; a bias rounded the
    wrong way is found by trying bias -+ 1."""
    half = Requant(rounding="tflite", bias=np.zeros(3, np.int64), multiplier=np.full(3, 2**30),
                   shift=np.zeros(3, np.int64), zero_point=0, clamp_min=0, clamp_max=15,
                   out_dtype=dtype("UINT4"))
    lo, hi = np.array([0, -50, 100]), np.array([20, -10, 140])
    acc = np.arange(0, 21)
    even = np.clip(np.round(acc / 2), 0, 15)  # 0, 0, 1, 2, 2, 2, 3, 4, 4, ...
    t0 = exact_thresholds(even[:, None], lo[:1], np.arange(1, 16))
    below = np.full((1, 15), 1000)  # never reached: the clamp's minimum everywhere
    above = np.full((1, 15), -1000)  # always reached: the maximum everywhere
    t = np.concatenate([t0, below, above])
    ok, diff = requant_matches_thresholds(half, t, 0, lo, hi)
    assert ok.tolist() == [False, True, True] and diff.tolist() == [1, 0, 0]
    # the same layer without ties: factor 2/3, thresholds of the exact value, bias off by one
    m, s = quantize_multiplier(2 / 3)
    act = Requant(rounding="tflite", bias=np.array([7]), multiplier=np.array([m]), shift=np.array([s]),
                  zero_point=0, clamp_min=0, clamp_max=255, out_dtype=dtype("UINT8"))
    acc = np.arange(-20, 400)[:, None]
    exact = np.clip(np.round((acc + 6) * 2 / 3), 0, 255)
    t = exact_thresholds(exact, np.array([-20]), np.arange(1, 256))
    lo, hi = np.array([-20]), np.array([399])
    assert not requant_matches_thresholds(act, t, 0, lo, hi)[0][0]
    refined, diff, _ = closest_requantization(act, t, 0, lo, hi)
    assert refined.bias.tolist() == [6] and diff.tolist() == [0]


def random_half_even(rng: np.random.Generator, channels: int) -> Requant:
    """Factors from 1/64 to 16 steps per accumulator unit (a third powers of two: ties
    reachable), biases with fractional bits, a random zero point and clamp."""
    po2 = rng.random(channels) < 0.33
    reals = np.where(po2, 2.0 ** rng.integers(-6, 5, channels), 2.0 ** rng.uniform(-6, 4, channels))
    pairs = [half_even_multiplier(float(r)) for r in reals]
    m = np.array([p[0] for p in pairs], np.int64)
    n = np.array([p[1] for p in pairs], np.int64)
    bias = np.round(rng.uniform(-40, 40, channels) * 4) / 4  # quarters: ties after scaling
    lo_code = int(rng.integers(-128, 0))
    return Requant(rounding="half_even", bias=np.round(bias * m).astype(np.int64),
                   multiplier=m, shift=n, zero_point=int(rng.integers(-5, 6)),
                   clamp_min=lo_code, clamp_max=int(rng.integers(lo_code + 1, 128)),
                   out_dtype=dtype("INT8"))


@pytest.mark.parametrize("seed", range(8))
def test_half_even_proof_and_bias_solve(seed: int) -> None:
    """Half-to-even requantizations: the boundary proof agrees with enumeration on their own
    thresholds and on thresholds one off; thresholds of the float function rounded half to
    even (np.round, as QONNX's Quant) with a factor a little off the multiplier's grid (as a
    float tail's is) are matched by solving the bias, and the solved function equals them
    on every accumulator."""
    rng = np.random.default_rng(100 + seed)
    channels = 8
    act = random_half_even(rng, channels)
    lo = rng.integers(-300, 100, channels)
    hi = lo + rng.integers(0, 400, channels)
    span = int((hi - lo).max()) + 1
    acc = np.minimum(lo[None, :] + np.arange(span)[:, None], hi[None, :])
    levels = np.arange(act.clamp_min + 1, act.clamp_max + 1)
    own = exact_thresholds(requantize(acc, act), lo, levels)
    for t in (own, own + 1):
        ok, diff = requant_matches_thresholds(act, t, act.clamp_min, lo, hi)
        want = brute_difference(act, t, act.clamp_min, lo, hi)
        assert np.array_equal(diff, want) and np.array_equal(ok, want == 0)
    real_factor = act.multiplier / 2.0**act.shift * (1 + rng.uniform(-1e-9, 1e-9, channels))
    real_bias = act.bias / np.maximum(act.multiplier, 1) + rng.uniform(-1e-3, 1e-3, channels)
    real = np.clip(np.round((acc + real_bias) * real_factor) + act.zero_point,
                   act.clamp_min, act.clamp_max)
    t = exact_thresholds(real, lo, levels)
    nominal = dataclasses.replace(act, bias=act.bias + rng.integers(-3, 4, channels) * 1000)
    solved, diff, moved = closest_requantization(nominal, t, act.clamp_min, lo, hi)
    assert diff.tolist() == [0] * channels and moved.tolist() == [0] * channels
    assert not brute_difference(solved, t, act.clamp_min, lo, hi).any()


def test_solve_bias_refuses_what_no_bias_fits() -> None:
    """Thresholds two apart at factor 1 (a step of two accumulator units per level) cannot
    be met by any bias at multiplier 2^30 / 2^30: None, and the channel keeps thresholds."""
    t = np.array([0, 2, 4, 6])
    assert solve_bias(2**30, 30, 0, 0, t, -10, 10, 0) is None
    assert solve_bias(2**29, 30, 0, 0, t, -10, 10, 0) is not None  # factor 1/2 fits


def dense_bn_relu_model(path: Path, factors: list[float], seed: int = 0,
                        bias_offset: float = 0.0) -> Path:
    """x [1, 16] -> Quant(INT8, 2^-4) -> Gemm(INT4 weights, 2^-3) -> Add(bias) ->
    BatchNormalization -> Relu -> Quant(UINT8, 2^-5) -> Gemm -> y. Channel c's output is
    (acc + B[c] + bias_offset) * factors[c] steps, B[c] a whole number (negative factors: a
    decreasing channel)."""
    rng = np.random.default_rng(seed)
    n_in, n_out = 16, len(factors)
    s_x, s_w, s_o = 2.0**-4, 2.0**-3, 2.0**-5
    w_codes = rng.integers(-7, 8, (n_out, n_in))
    bias = (rng.integers(-60, 61, n_out) + bias_offset) * s_x * s_w
    gamma = np.array(factors) * s_o / (s_x * s_w)
    consts = {"W0": w_codes * s_w, "W1": rng.integers(-3, 4, (4, n_out)).astype(float),
              "bias": bias, "gamma": gamma, "beta": np.zeros(n_out), "mean": np.zeros(n_out),
              "var": np.ones(n_out)}
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in consts.items()]
    nodes = []
    for name, inp, scale, bits, signed in (("xq", "x", s_x, 8, 1), ("w0", "W0", s_w, 4, 1),
                                           ("act", "relu", s_o, 8, 0), ("w1", "W1", 1.0, 4, 1)):
        node, c = quant(name, inp, scale, bits, signed)
        nodes.append(node)
        inits += c
    nodes = [nodes[0], nodes[1],
             helper.make_node("Gemm", ["xq", "w0"], ["acc"], name="fc0", transB=1),
             helper.make_node("Add", ["acc", "bias"], ["biased"], name="add_bias"),
             helper.make_node("BatchNormalization", ["biased", "gamma", "beta", "mean", "var"],
                              ["bn"], name="bn", epsilon=0.0),
             helper.make_node("Relu", ["bn"], ["relu"], name="relu"), nodes[2], nodes[3],
             helper.make_node("Gemm", ["act", "w1"], ["y"], name="fc1", transB=1)]
    g = helper.make_graph(nodes, "dense_bn_relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid(QD, 1)])
    m.ir_version = 10
    onnx.save(m, path)
    return path


def inputs_with_ties(n: int, seed: int) -> np.ndarray:
    """Random inputs, a quarter of them exactly half-way between two input levels (2^-4)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, (n, 16)).astype(np.float32)
    x[: n // 4] = ((rng.integers(-100, 100, (n // 4, 16)) + 0.5) * 2.0**-4).astype(np.float32)
    return x


# odd denominators: (acc + B) * factor is never a tie; factors in [1/2, 2): one rounding
EXACT_FACTORS = [2 / 3, 3 / 5, 4 / 5, 6 / 7, -2 / 3, 4 / 3, 5 / 7, 7 / 5]


def test_dense_bn_relu_uint8_is_requantized_and_exact(tmp_path: Path) -> None:
    """The int8 pattern dense + batch norm + ReLU + UINT8: the ReLU is the quantizer's
    clamp, the requantization is proven equal (a decreasing channel included), so auto
    requantizes it, and golden equals the executor on every sample, input ties included."""
    path = dense_bn_relu_model(tmp_path / "m.onnx", EXACT_FACTORS)
    model = lower(path, activation="auto")
    act = model.layers[0].activation
    assert isinstance(act, Requant)
    meta = model.meta["requantized_layers"]["dense0"]
    assert meta["proven_exact"] and meta["max_step_difference"] == 0
    assert model.meta["inexact_layers"] == [] and model.meta["frontend"] == "qonnx"
    x = inputs_with_ties(200, 1)
    assert np.array_equal(golden.run(model, x).reshape(len(x), -1), qonnx_outputs(path, x))


def test_verify_treats_a_proven_requantization_as_exact(tmp_path: Path) -> None:
    """verify judges a proven layer as thresholds are: equal on every sample, passed, and
    its measured difference 0."""
    path = dense_bn_relu_model(tmp_path / "model.qonnx.onnx", EXACT_FACTORS)
    lower(path).save(tmp_path)
    mark(tmp_path)
    r = verify(tmp_path, x=inputs_with_ties(80, 4))
    assert r["all_equal"] and r["passed"]
    measured = r["requantization"]["layers"]["dense0"]
    assert measured["max_step_difference"] == 0 and measured["equal_samples"] == 80
    assert r["agreement"]["qonnx_executor"]["rounding"]["unexplained_samples"] == []
    # no slack for a proven layer: its bias moved by one unit is a wrong answer
    model = lower(path)
    act = model.layers[0].activation
    assert isinstance(act, Requant) and act.rounding == "half_even"
    act.bias = act.bias + act.multiplier  # one accumulator unit
    x = inputs_with_ties(80, 4)
    theirs, codes = qonnx_trace(path, x)
    report = rounding(model, x, golden.run(model, x).reshape(len(x), -1), theirs, codes)
    assert report["unexplained_samples"]


def test_ties_and_double_rounding_are_exact_rounding_half_to_even(tmp_path: Path) -> None:
    """A factor 1/2 (ties) and 1/3 (which TFLite rounds twice): QONNX's own rounding, the
    default, is proven equal, so auto requantizes and claims exactness, and golden equals
    the executor on every sample, ties included."""
    path = dense_bn_relu_model(tmp_path / "m.onnx", [2 / 3, 1 / 2, 1 / 3, 4 / 5])
    x = inputs_with_ties(200, 2)
    auto = lower(path, activation="auto")
    act = auto.layers[0].activation
    assert isinstance(act, Requant) and act.rounding == "half_even"
    assert auto.meta["inexact_layers"] == []
    assert auto.meta["requantized_layers"]["dense0"]["proven_exact"]
    assert np.array_equal(golden.run(auto, x).reshape(len(x), -1), qonnx_outputs(path, x))


def test_unequal_layer_keeps_thresholds_or_is_listed_inexact(tmp_path: Path) -> None:
    """TFLite's rounding asked for: a factor 1/2 (ties: TFLite rounds away from zero, QONNX
    to even) and 1/3 (double rounding): auto keeps thresholds and stays exact; forced
    requantization lists the layer inexact with its largest difference, one step."""
    path = dense_bn_relu_model(tmp_path / "m.onnx", [2 / 3, 1 / 2, 1 / 3, 4 / 5])
    x = inputs_with_ties(200, 2)
    ref = qonnx_outputs(path, x)
    auto = lower(path, activation="auto", rounding="tflite")
    assert isinstance(auto.layers[0].activation, Thresholds)
    assert auto.meta["inexact_layers"] == [] and "requantized_layers" not in auto.meta
    assert np.array_equal(golden.run(auto, x).reshape(len(x), -1), ref)
    forced = lower(path, activation="requant", rounding="tflite")
    assert isinstance(forced.layers[0].activation, Requant)
    assert forced.meta["inexact_layers"] == ["dense0"]
    meta = forced.meta["requantized_layers"]["dense0"]
    assert not meta["proven_exact"] and meta["max_step_difference"] == 1
    assert meta["float_product_exact"]


def test_large_factor_with_a_fractional_bias(tmp_path: Path) -> None:
    """The issue's CNN layer in small: a factor of 17.65 output steps per accumulator unit
    and a bias half an accumulator unit off the integers. Rounding half to even carries the
    bias with the product's fractional bits: proven exact, requantized under auto. TFLite's
    whole bias (nor bias -+ 1) cannot represent it: forced, it is off by about half the
    factor, 8 or 9 steps, and says so; auto keeps thresholds. Both equal the executor."""
    path = dense_bn_relu_model(tmp_path / "m.onnx", [17.65, 2 / 3], bias_offset=0.5)
    x = inputs_with_ties(200, 3)
    ref = qonnx_outputs(path, x)
    half_even = lower(path, activation="auto")
    assert isinstance(half_even.layers[0].activation, Requant)
    assert half_even.meta["inexact_layers"] == []
    assert np.array_equal(golden.run(half_even, x).reshape(len(x), -1), ref)
    forced = lower(path, activation="requant", rounding="tflite")
    meta = forced.meta["requantized_layers"]["dense0"]
    assert forced.meta["inexact_layers"] == ["dense0"] and meta["max_step_difference"] in (8, 9)
    auto = lower(path, activation="auto", rounding="tflite")
    assert isinstance(auto.layers[0].activation, Thresholds)
    assert np.array_equal(golden.run(auto, x).reshape(len(x), -1), ref)


def test_factor_past_int32(tmp_path: Path) -> None:
    """A ReLU layer whose factor of 2^21 steps per unit (as fuzz seed 201's) shifts TFLite's
    accumulator past int32: with TFLite's rounding auto keeps thresholds and forced
    requantization is refused by name; rounding half to even has no left shift and
    requantizes it, exactly."""
    path = dense_bn_relu_model(tmp_path / "m.onnx", [2.0**21, 2 / 3])
    assert isinstance(lower(path, activation="auto", rounding="tflite").layers[0].activation,
                      Thresholds)
    with pytest.raises(LoweringError, match=r"\(Quant\): layer dense0: cannot be requantized "
                                            r"\(.*leaves int32\)"):
        lower(path, activation="requant", rounding="tflite")
    model = lower(path, activation="auto")
    assert isinstance(model.layers[0].activation, Requant) and model.meta["inexact_layers"] == []
    x = inputs_with_ties(100, 5)
    assert np.array_equal(golden.run(model, x).reshape(len(x), -1), qonnx_outputs(path, x))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_po2_mlp_is_exact_under_auto(seed: int, tmp_path: Path) -> None:
    """The issue's MLP: 16 -> 8 with 5-bit power-of-two weights and a bias, an 8-bit
    power-of-two activation, then 8 -> 10 binary. Auto equals the executor on every sample
    and claims exactness only where it holds."""
    spec = {"seed": seed, "po2": True, "input_shape": [16], "input": {"quant": "fixed", "bits": 8},
            "input_gain": 1.0, "refuse": None, "layers": [
                {"out": 8, "bias": "float", "weight": {"quant": "fixed_tensor", "bits": 5},
                 "weight_gain": 0.3, "bn": None,
                 "act": {"module": "identity", "quant": "fixed", "bits": 8}},
                {"out": 10, "bias": None, "weight": {"quant": "binary", "scale": 0.25},
                 "weight_gain": 0.3, "bn": None, "act": None}]}
    path = export_qonnx(fuzz_space.build(spec), torch.zeros(1, 16), tmp_path / "m.onnx")
    model = lower(path, activation="auto")
    x = fuzz.inputs_for(model, spec, 64)
    ours = golden.run(model, x).reshape(len(x), -1)
    assert model.meta["inexact_layers"] == []
    assert np.array_equal(ours, qonnx_outputs(path, x))
    for meta in model.meta.get("requantized_layers", {}).values():
        assert meta["proven_exact"]
