"""verify.json's rounding report: where the float graph rounds (±0.1 binary weights), the
samples whose ties break differently in qonnx's executor are counted by the layer where
the executor departs from golden, and a wrong threshold is never taken for rounding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flow import golden
from flow.export import export_qonnx
from flow.lower import lower
from flow.verify import qonnx_trace, rounding, verify
from tests import fuzz


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
    onnx_path = export_qonnx(fuzz.build(binary_spec(0.1)), torch.zeros(1, 24),
                             tmp_path / "model.qonnx.onnx")
    model = lower(onnx_path)
    model.save(tmp_path)
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
    onnx_path = export_qonnx(fuzz.build(binary_spec(0.5)), torch.zeros(1, 24),
                             tmp_path / "model.qonnx.onnx")
    lower(onnx_path).save(tmp_path)
    r = verify(tmp_path, x=signs)["agreement"]["qonnx_executor"]
    assert r["equal"] == r["total"] == len(signs)
    assert r["rounding"] == {"inexact_layers": [], "affected_samples": 0,
                             "first_difference": {}, "unexplained_samples": []}


def test_a_wrong_threshold_is_unexplained(tmp_path: Path, signs: np.ndarray) -> None:
    """Thresholds moved up by 20 in an inexact layer: every sample with an accumulator
    clearly between the old and the new threshold (not at the old tie, not within the
    rounding slack of the new one) is a wrong answer, not rounding."""
    onnx_path = export_qonnx(fuzz.build(binary_spec(0.1)), torch.zeros(1, 24),
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
