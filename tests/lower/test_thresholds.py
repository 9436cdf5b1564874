"""Threshold computation on hand-built QONNX graphs: ties, rounding modes, extreme scales,
negative slopes, and levels that are never or always reached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from flow import golden
from flow.lower import lower
from flow.reference import qonnx_outputs
from tests.helpers.onnx import quant


def tail_model(path: Path, weights: np.ndarray, mul: float, add: float, act_bits: int,
               act_scale: float = 1.0, rounding: str = "ROUND", in_bits: int = 4) -> Path:
    """x -> Quant(UINT in_bits) -> Gemm(bipolar W) -> Mul -> Add -> Quant(act) -> Gemm -> y."""
    n_out, n_in = weights.shape
    nodes, inits = [], []
    q_in, c = quant("xq", "x", 1.0, in_bits, 0)
    nodes.append(q_in)
    inits += c
    inits += [numpy_helper.from_array(weights.astype(np.float32), "W0"),
              numpy_helper.from_array(np.ones((2, n_out), np.float32), "W1"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one"),
              numpy_helper.from_array(np.full(n_out, mul, np.float32), "m"),
              numpy_helper.from_array(np.full(n_out, add, np.float32), "a")]
    qd = "qonnx.custom_op.general"
    nodes += [helper.make_node("BipolarQuant", ["W0", "one"], ["w0"], name="wq0", domain=qd),
              helper.make_node("Gemm", ["xq", "w0"], ["acc"], name="fc0", transB=1),
              helper.make_node("Mul", ["acc", "m"], ["t1"], name="mul"),
              helper.make_node("Add", ["t1", "a"], ["t2"], name="add")]
    q_act, c = quant("act", "t2", act_scale, act_bits, 0, rounding)
    nodes.append(q_act)
    inits += c
    nodes += [helper.make_node("BipolarQuant", ["W1", "one"], ["w1"], name="wq1", domain=qd),
              helper.make_node("Gemm", ["act", "w1"], ["y"], name="fc1", transB=1)]
    g = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [1, n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(qd, 1)])
    m.ir_version = 10
    onnx.save(m, path)
    return path


def all_inputs(n_in: int, bits: int) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(2**bits)] * n_in, indexing="ij"), -1)
    return grid.reshape(-1, n_in).astype(np.float32)


def test_ties_round_half_to_even(tmp_path: Path) -> None:
    # y = acc/2 - 1 hits .5 exactly at odd acc: round half to even decides the level
    p = tail_model(tmp_path / "m.onnx", np.array([[1, 1], [1, -1]]), 0.5, -1.0, act_bits=2)
    model = lower(p)
    t = model.layers[0].activation.values
    # channel 0 (acc = x0 + x1 in 0..30): y=0.5 -> 0, acc 4 -> 1, 1.5 -> 2, 2.5 -> 2, acc 8 -> 3
    assert t[0].tolist() == [4, 5, 8]
    x = all_inputs(2, 4)
    assert np.array_equal(golden.run(model, x), qonnx_outputs(p, x))


@pytest.mark.parametrize("rounding", ["ROUND", "FLOOR", "CEIL"])
@pytest.mark.parametrize("mul", [2.0**-20, 3.0e-7, 0.37, -0.37, 1.0e6, -(2.0**18)])
def test_extreme_and_negative_scales(tmp_path: Path, rounding: str, mul: float) -> None:
    rng = np.random.default_rng(7)
    w = rng.choice([-1, 1], size=(3, 3))
    add = 1.5 if abs(mul) >= 1e-3 else 2.0**-19
    act_scale = 2.0 ** np.round(np.log2(abs(mul) * 2))  # po2: the last layer stays exact
    p = tail_model(tmp_path / "m.onnx", w, mul, add, act_bits=3, act_scale=act_scale,
                   rounding=rounding, in_bits=3)
    model = lower(p)
    assert model.meta["inexact_layers"] == []
    x = all_inputs(3, 3)
    assert np.array_equal(golden.run(model, x), qonnx_outputs(p, x))
    got = model.layers[0].weights
    flipped = np.all(got == -w, axis=1)
    assert np.all(flipped | np.all(got == w, axis=1))
    if mul < 0:  # decreasing tails are negated so that thresholds count upwards
        assert flipped.any()
    else:
        assert not flipped.any()


def test_unreachable_and_always_reached_levels(tmp_path: Path) -> None:
    # a huge offset: every level reached by every accumulator; then none reached
    for add, expect in ((1000.0, "low"), (-1000.0, "high")):
        p = tail_model(tmp_path / f"m{add}.onnx", np.array([[1, 1]]), 1.0, add, act_bits=2)
        model = lower(p)
        layer = model.layers[0]
        t = layer.activation.values
        bound = layer.acc_min if expect == "low" else layer.acc_max + 1
        assert np.all(t == bound)
        x = all_inputs(2, 4)
        assert np.array_equal(golden.run(model, x), qonnx_outputs(p, x))
