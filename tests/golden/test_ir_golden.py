"""The IR contract and the golden model: datatypes, bounds, serialization, exact matmul."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.datatypes import bits_for_range, dtype, quant_dtype, smallest_int_type
from flow.golden.exact import carrier
from flow.ir import IRError, accumulator_bounds, load, popcount_thresholds
from flow.synthetic import random_codes, random_model


@pytest.mark.parametrize("lo,hi,bits", [(0, 0, 1), (0, 1, 1), (0, 255, 8), (-1, 0, 1),
                                        (-128, 127, 8), (-129, 0, 9), (-784, 784, 11),
                                        (-64, 64, 8)])
def test_bits_for_range(lo: int, hi: int, bits: int) -> None:
    assert bits_for_range(lo, hi) == bits


def test_datatypes() -> None:
    assert dtype("INT4").min == -8 and dtype("UINT3").max == 7
    assert dtype("BIPOLAR").bits == 1 and dtype("TERNARY").bits == 2
    assert quant_dtype(2, True, True).name == "TERNARY"
    assert smallest_int_type(-3, 12).name == "INT5"
    with pytest.raises(ValueError, match="unknown datatype"):
        dtype("FLOAT8")


def test_accumulator_bounds_are_tight() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, size=(6, 40))
    lo, hi = accumulator_bounds(w, 0, 15)
    # the extreme input per channel reaches each bound exactly
    x_hi = np.where(w > 0, 15, 0)
    x_lo = np.where(w < 0, 15, 0)
    assert np.array_equal((w * x_hi).sum(1), hi) and np.array_equal((w * x_lo).sum(1), lo)


@pytest.mark.parametrize("bound", [2**24 - 1, 2**24, 2**53 - 1, 2**53])
def test_carrier_is_exact_at_the_float_limits(bound: int) -> None:
    rng = np.random.default_rng(1)
    n = 4
    big = bound // n
    x = rng.integers(-big, big + 1, size=(5, n), dtype=np.int64)
    w = rng.choice([-1, 1], size=(3, n))
    ftype = carrier(bound, 0)
    assert ftype == {2**24 - 1: np.float32, 2**24: np.float64, 2**53 - 1: np.float64}.get(bound, np.int64)
    assert np.array_equal((x.astype(ftype) @ w.T.astype(ftype)).astype(np.int64), x @ w.T)


def test_golden_thresholds_by_hand() -> None:
    m = random_model([4, 3, 2], ["INT2", "INT2"], ["UINT2"], input_type="UINT2", seed=0)
    layer = m.layers[0]
    layer.weights = np.array([[1, 1, 1, 1], [-1, 0, 1, 0], [1, -1, 1, -1]], np.int8)
    layer.activation.values = np.array([[0, 2, 4], [-1, 0, 1], [5, 5, 5]])
    x = np.array([[1, 1, 0, 0], [3, 0, 0, 0], [0, 0, 3, 3]])
    out = golden.trace_codes(m, x)[0]
    # acc rows: [2, -1, 0], [3, -3, 3], [6, 3, 0]; tie acc == threshold counts as reached
    assert out.tolist() == [[2, 1, 0], [2, 0, 0], [3, 3, 0]]


def test_save_load_roundtrip(tmp_path: Path) -> None:
    m = random_model([40, 16, 8, 5], ["BIPOLAR", "INT3", "TERNARY"], ["BIPOLAR", "INT4"],
                     input_type="UINT8", folding=[(4, 8), (2, 4), (5, 1)], seed=2)
    codes = random_codes(m, 64)
    m.save(tmp_path)
    m2 = load(tmp_path)
    assert np.array_equal(golden.run_codes(m, codes), golden.run_codes(m2, codes))
    assert m2.initiation_interval == max(layer.cycles for layer in m.layers) == 20
    assert json.loads((tmp_path / "ir.json").read_text())["schema"] == "qflow.ir/3"


def test_load_refuses_schema_1_and_unknown_kinds(tmp_path: Path) -> None:
    m = random_model([8, 4, 2], ["INT2", "INT2"], ["UINT2"], seed=0)
    m.save(tmp_path)
    js = tmp_path / "ir.json"
    doc = json.loads(js.read_text())
    js.write_text(json.dumps({**doc, "schema": "qflow.ir/1"}))
    with pytest.raises(IRError, match=r"ir.json: schema 'qflow.ir/1'.*re-run `qflow export`"):
        load(tmp_path)
    doc["layers"][1]["kind"] = "conv9d"
    js.write_text(json.dumps(doc))
    with pytest.raises(IRError, match=r"layer 1 \(dense1\): unknown kind 'conv9d'"):
        load(tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda d, a: a.update({"dense0.weights": a["dense0.weights"] + 0.5}), "must hold integers"),
    (lambda d, a: a.update({"dense0.thresholds": np.full_like(a["dense0.thresholds"], np.nan,
                                                              dtype=float)}), "must hold integers"),
    (lambda d, a: d["layers"][0]["folding"].update(pe=0), r"layer 0 .*PE 0"),
    (lambda d, a: d["layers"][0]["activation"].update(step=1, out_dtype="BIPOLAR"),
     "BIPOLAR activation is one threshold"),
    (lambda d, a: d["input"].update(scale=0.0), "input scale 0.0"),
    (lambda d, a: d["layers"][0]["activation"].update(kind="lut"), "activation kind 'lut'"),
])
def test_load_validates_edited_irs(tmp_path: Path, edit, message: str) -> None:  # noqa: ANN001
    m = random_model([8, 4, 2], ["INT2", "INT2"], ["BIPOLAR"], seed=0)
    m.save(tmp_path)
    doc = json.loads((tmp_path / "ir.json").read_text())
    with np.load(tmp_path / "ir.npz") as z:
        arrays = {k: z[k] for k in z.files}
    edit(doc, arrays)
    (tmp_path / "ir.json").write_text(json.dumps(doc))
    np.savez(tmp_path / "ir.npz", **arrays)
    with pytest.raises(IRError, match=message):
        load(tmp_path)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(IRError, match="ir.json: missing"):
        load(tmp_path)
    m = random_model([8, 4, 2], ["INT2", "INT2"], ["UINT2"], seed=0)
    m.save(tmp_path)
    doc = json.loads((tmp_path / "ir.json").read_text())
    doc["layers"][1]["in_features"] = 5
    (tmp_path / "ir.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=r"layer 1 \(dense1"):
        load(tmp_path)
    (tmp_path / "ir.json").write_text("{ not json")
    with pytest.raises(IRError, match="not valid JSON"):
        load(tmp_path)


def test_validate_catches_narrow_accumulator() -> None:
    m = random_model([16, 8, 4], ["INT4", "INT4"], ["UINT2"], seed=3)
    m.layers[0].acc_max = 1
    with pytest.raises(IRError, match="narrower than the worst case"):
        m.validate()


def test_golden_refuses_inputs_outside_their_type() -> None:
    m = random_model([16, 8, 4], ["INT4", "INT4"], ["UINT2"], input_type="UINT2", seed=3)
    with pytest.raises(IRError, match="outside"):
        golden.run_codes(m, np.full((1, 16), 100))


def test_popcount_thresholds_match_signed_thresholds() -> None:
    m = random_model([37, 9, 3], ["BIPOLAR", "BIPOLAR"], ["BIPOLAR"], input_type="BIPOLAR",
                     seed=4)
    layer = m.layers[0]
    x = random_codes(m, 500)
    acc = x @ layer.weights.T.astype(np.int64)
    popcount = (acc + layer.in_features) // 2  # matching signs
    t = popcount_thresholds(layer)
    want = acc >= layer.activation.values[:, 0]
    assert np.array_equal(popcount >= t[:, 0], want)


def test_quantize_input_matches_qonnx_quant() -> None:
    from qonnx.custom_op.general.quant import quant

    m = random_model([6, 4, 2], ["INT2", "INT2"], ["UINT2"], input_type="UINT8", seed=0)
    stage = m.input
    stage.scale, stage.zero_point = 2.0**-8, 0.0
    x = np.random.default_rng(0).random((200, 6), dtype=np.float32) * 1.2 - 0.1
    x[0, :3] = [0.5 / 256, 1.5 / 256, 2.5 / 256]  # exact halves: round half to even
    ref = quant(x, np.float32(stage.scale), np.float32(0), np.float32(8), 0, 0, "ROUND")
    codes = golden.quantize_input(stage, x)
    assert np.array_equal(codes * np.float32(stage.scale), ref)
