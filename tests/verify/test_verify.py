"""verify.json's rounding report: where the float graph rounds (±0.1 binary weights), the
samples whose ties break differently in qonnx's executor are counted by the layer where
the executor departs from golden, and a wrong threshold is never taken for rounding; a
requantized layer's difference from the float graph is measured (ties and double rounding
with power-of-two scales, at most a step with float scales), and a wrong one fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flow import golden
from flow.buildfolder import mark
from flow.export import export_qonnx
from flow.ir import Requant
from flow.ir import load as load_ir
from flow.lower import lower
from flow.reference import qonnx_trace
from flow.verify import explained, frame_order, rounding, verify
from tests import fuzz_space


def binary_spec(scale: float) -> dict:
    """24 ±1 inputs, 16 sign units of ±scale weights (no bias, no batch norm: threshold 0),
    10 logits: even fan-in makes accumulator 0, a tie, common."""
    weight = {"quant": "binary", "scale": scale}
    return {"seed": 5, "po2": scale == 0.5, "input_shape": [24], "input": {"quant": "binary"},
            "input_gain": 1.0, "refuse": None, "layers": [
                {"out": 16, "bias": None, "weight": weight, "weight_gain": 1.0, "bn": None,
                 "act": {"module": "identity", "quant": "binary"}},
                {"out": 10, "bias": None, "weight": weight, "weight_gain": 1.0, "bn": None,
                 "act": None}]}


@pytest.fixture(scope="module")
def signs() -> np.ndarray:
    return np.random.default_rng(0).choice([-1.0, 1.0], size=(200, 24)).astype(np.float32)


def test_ties_of_a_rounding_graph(tmp_path: Path, signs: np.ndarray) -> None:
    onnx_path = export_qonnx(fuzz_space.build(binary_spec(0.1)), torch.zeros(1, 24),
                             tmp_path / "model.qonnx.onnx")
    model = lower(onnx_path)
    model.save(tmp_path)
    mark(tmp_path)
    r = verify(tmp_path, x=signs)["agreement"]["qonnx_executor"]
    report = r["rounding"]
    assert report["inexact_layers"] == ["dense0", "dense1"]
    assert report["unexplained_samples"] == []
    assert report["affected_samples"] == r["total"] - r["equal"]
    # independently: the executor's sign units differ from exact arithmetic only where the
    # exact accumulator is 0 (the tie), and on some samples they do
    _, codes = qonnx_trace(onnx_path, signs)
    acc = codes[0] @ model.layers[0].weights.T.astype(np.int64)
    flipped = codes[1] != np.where(acc >= 0, 1, -1)
    assert flipped.any() and np.all(acc[flipped] == 0)
    assert report["first_difference"]["dense0"] == int(flipped.any(axis=1).sum())


def test_exact_graph_has_no_affected_samples(tmp_path: Path, signs: np.ndarray) -> None:
    onnx_path = export_qonnx(fuzz_space.build(binary_spec(0.5)), torch.zeros(1, 24),
                             tmp_path / "model.qonnx.onnx")
    lower(onnx_path).save(tmp_path)
    mark(tmp_path)
    r = verify(tmp_path, x=signs)["agreement"]["qonnx_executor"]
    assert r["equal"] == r["total"] == len(signs)
    assert r["rounding"] == {"inexact_layers": [], "affected_samples": 0,
                             "first_difference": {}, "unexplained_samples": []}


def test_a_wrong_threshold_is_unexplained(tmp_path: Path, signs: np.ndarray) -> None:
    """Thresholds moved up by 20 in an inexact layer: every sample with an accumulator
    clearly between the old and the new threshold (not at the old tie, not within the
    rounding slack of the new one) is a wrong answer, not rounding."""
    onnx_path = export_qonnx(fuzz_space.build(binary_spec(0.1)), torch.zeros(1, 24),
                             tmp_path / "m.onnx")
    model = lower(onnx_path)
    x = signs[:80]
    theirs, codes = qonnx_trace(onnx_path, x)
    act = model.layers[0].activation
    assert act is not None
    old = act.values[:, 0].copy()
    act.values = act.values + 20
    ours = golden.run(model, x).reshape(len(x), -1)
    acc = codes[0] @ model.layers[0].weights.T.astype(np.int64)
    surely_wrong = np.any((acc > old) & (acc < old + 10), axis=1)
    assert surely_wrong.any()
    step = golden.trace_codes(model, codes[0])[0]
    differs = np.any(step != codes[1], axis=1)
    unexplained = rounding(model, x, ours, theirs, codes)["unexplained_samples"]
    assert set(np.flatnonzero(surely_wrong)) <= set(unexplained) <= set(np.flatnonzero(differs))


# ---- requantized layers: measured against the float graph, never hidden ---------------------

def fixed_point_spec() -> dict:
    """Brevitas' fixed-point quantizers (Int8WeightPerTensorFixedPoint,
    Int8ActPerTensorFixedPoint), no bias, no batch norm: every scale a power of two, so the
    8-bit hidden layer's requantization is the float graph's own factor."""
    weight = {"quant": "fixed_tensor", "bits": 8}
    return {"seed": 4, "po2": True, "input_shape": [20], "input": {"quant": "fixed", "bits": 8},
            "input_gain": 1.0, "refuse": None, "layers": [
                {"out": 16, "bias": None, "weight": weight, "weight_gain": 0.3, "bn": None,
                 "act": {"module": "identity", "quant": "fixed", "bits": 8}},
                {"out": 5, "bias": None, "weight": weight, "weight_gain": 0.3, "bn": None,
                 "act": None}]}


@pytest.fixture(scope="module")
def fixed_point_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("po2")
    spec = fixed_point_spec()
    export_qonnx(fuzz_space.build(spec), torch.zeros(1, 20), folder / "model.qonnx.onnx")
    # forced, TFLite's rounding: ties and double rounding make dense0's requantization
    # differ from the float graph's quantizer (auto would keep its thresholds)
    lower(folder / "model.qonnx.onnx", activation="requant", rounding="tflite").save(folder)
    mark(folder)
    return folder, fuzz_space.random_inputs(spec, 160, 1)


def test_power_of_two_requantization_differs_only_by_its_rounding(
        fixed_point_build: tuple[Path, np.ndarray]) -> None:
    """The executor computes the exact value (acc + bias) * 2^(shift - 1) rounded half to even
    (checked here with fractions); golden's TFLite function differs from it by one step where
    that value is a tie (rounded away from zero) or where the high product's rounding before
    the shift moves it across a half (double rounding): verify counts both, and passes."""
    from fractions import Fraction

    from tests.helpers.reference import ref_mbqm

    folder, x = fixed_point_build
    r = verify(folder, x=x)
    model = load_ir(folder)
    act = model.layers[0].activation
    assert isinstance(act, Requant)
    requantized = model.meta["requantized_layers"]["dense0"]
    assert requantized["power_of_two"] and not requantized["proven_exact"]
    assert requantized["max_step_difference"] == 1 and requantized["float_product_exact"]
    assert set(act.multiplier.tolist()) == {2**30} and model.meta["inexact_layers"] == ["dense0"]
    _, codes = qonnx_trace(folder / "model.qonnx.onnx", x)
    acc = codes[0] @ model.layers[0].weights.T.astype(np.int64)
    theirs = codes[1]
    mine = np.zeros_like(theirs)
    ties = np.zeros(theirs.shape, bool)
    for (i, c), a in np.ndenumerate(acc):
        b, m, s = int(act.bias[c]), int(act.multiplier[c]), int(act.shift[c])
        v = Fraction(int(a) + b) * m * Fraction(2) ** (s - 31)
        assert theirs[i, c] == min(max(round(v) + act.zero_point, act.clamp_min), act.clamp_max)
        ties[i, c] = v.denominator == 2
        mine[i, c] = min(max(ref_mbqm(int(a) + b, m, s) + act.zero_point, act.clamp_min),
                         act.clamp_max)
    differs = mine != theirs
    assert differs.any() and np.abs(mine - theirs).max() == 1
    m = r["requantization"]["layers"]["dense0"]
    assert m["tie_outputs"] == int((differs & ties).sum()) > 0
    assert m["double_rounding_outputs"] == int((differs & ~ties).sum()) > 0
    assert m["differing_outputs"] == int(differs.sum())
    assert m["equal_samples"] == int((~differs).all(axis=1).sum())
    assert m["max_step_difference"] == 1 and m["power_of_two"]
    executor = r["agreement"]["qonnx_executor"]
    assert executor["rounding"]["unexplained_samples"] == []
    assert set(executor["rounding"]["first_difference"]) == {"dense0"}
    assert not r["all_equal"] and r["passed"] and executor["explained"]
    assert r["requantization"]["argmax_equal"] == executor["argmax_equal"]
    # rounding half to even (the default) is the float graph's own function: proven, exact
    half_even = lower(folder / "model.qonnx.onnx", activation="auto")
    assert isinstance(half_even.layers[0].activation, Requant)
    assert half_even.meta["requantized_layers"]["dense0"]["proven_exact"]
    assert half_even.meta["inexact_layers"] == []
    assert np.array_equal(golden.run(half_even, x).reshape(len(x), -1),
                          qonnx_trace(folder / "model.qonnx.onnx", x)[0])


@pytest.mark.parametrize("case", ["power_of_two", "float_scales"])
def test_a_wrong_requantization_is_unexplained(
        case: str, fixed_point_build: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """A requantization bias moved by half an output step (power-of-two scales: the exact
    value is checked) or by three steps (float scales: beyond the one-step bound) fails."""
    if case == "power_of_two":
        folder, x = fixed_point_build
        onnx_path = folder / "model.qonnx.onnx"
    else:
        from tests.helpers.models import MLP_VARIANTS, random_mlp

        onnx_path = export_qonnx(random_mlp(MLP_VARIANTS["w8a8"], seed=3), torch.rand(1, 1, 8, 8),
                                 tmp_path / "m.onnx")
        x = np.random.default_rng(1).random((40, 1, 8, 8), dtype=np.float32)
    model = lower(onnx_path, activation="requant")
    act = model.layers[0].activation
    assert isinstance(act, Requant)
    steps = 0.5 if case == "power_of_two" else 3.0
    act.bias = act.bias + np.round(steps * 2.0**act.shift).astype(np.int64)  # product units
    theirs, codes = qonnx_trace(onnx_path, x)
    ours = golden.run(model, x).reshape(len(x), -1)
    report = rounding(model, x, ours, theirs, codes)
    step = golden.trace_codes(model, golden.quantize_input(model.input, x))[0]
    moved = np.any(step != frame_order(codes[1], None), axis=1)
    assert moved.sum() > len(x) // 2
    assert report["unexplained_samples"] == np.flatnonzero(moved)[:100].tolist()  # as listed
    agreement = {"equal": int(np.all(ours == theirs, axis=1).sum()), "total": len(x),
                 "rounding": report}
    assert not explained(agreement, model.meta["requantized_layers"])


def test_references_follow_what_the_build_holds(tmp_path: Path) -> None:
    """verify's references are the adapters whose sources the build holds: a compiled
    QONNX file gives qonnx's executor, a checkpoint Brevitas' forward, nothing neither."""
    from flow.reference import CHECKPOINT_FILE, QONNX_FILE, references

    assert references(tmp_path) == {}
    (tmp_path / QONNX_FILE).write_bytes(b"")
    assert set(references(tmp_path)) == {"qonnx_executor"}
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"")
    assert set(references(tmp_path)) == {"qonnx_executor", "brevitas_forward"}
