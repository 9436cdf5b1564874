"""Random IR models for backend tests and benchmarks (no training, no QONNX needed).

Each layer gets random weights of its datatype and random sorted thresholds inside the
accumulator's reachable range, so that every output level occurs on random inputs.
"""

from __future__ import annotations

import numpy as np

from flow.datatypes import DataType, dtype
from flow.ir import (
    DenseLayer,
    ElementwiseOp,
    Folding,
    InputStage,
    Layer,
    Model,
    OutputStage,
    Thresholds,
    accumulator_bounds,
)


def random_values(rng: np.random.Generator, t: DataType, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform random values of datatype t (BIPOLAR: -1/+1)."""
    if t.is_bipolar:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)
    return rng.integers(t.min, t.max + 1, size=shape, dtype=np.int64)


def activation_for(out_t: DataType) -> tuple[int, int, int]:
    """(base, step, number of thresholds) producing every value of out_t."""
    if out_t.is_bipolar:
        return -1, 2, 1
    return out_t.min, 1, out_t.max - out_t.min


def random_model(
    widths: list[int],
    weight_types: list[str],
    act_types: list[str],
    input_type: str = "UINT8",
    folding: list[tuple[int, int]] | None = None,
    seed: int = 0,
    name: str = "random",
) -> Model:
    """A dense MLP: widths = [in, h1, ..., out]; act_types gives each hidden layer's output
    type (len(widths) - 2 entries); folding is (PE, SIMD) per layer."""
    rng = np.random.default_rng(seed)
    n = len(widths) - 1
    if len(weight_types) != n or len(act_types) != n - 1:
        raise ValueError("need one weight type per layer and one activation type per hidden layer")
    in_t = dtype(input_type)
    inp = InputStage(
        shape=(widths[0],), preprocess=[ElementwiseOp("mul", np.ones((), np.float32))],
        kind="bipolar" if in_t.is_bipolar else "int", scale=1.0, zero_point=0.0,
        bitwidth=in_t.bits, signed=in_t.signed,
        # TERNARY is a narrow 2-bit quantizer: its codes stop at -1, not -2
        narrow=in_t.signed and not in_t.is_bipolar and in_t.min > -(2 ** (in_t.bits - 1)),
        out_dtype=in_t)
    layers: list[Layer] = []
    x_t = in_t
    for i in range(n):
        w_t = dtype(weight_types[i])
        w = random_values(rng, w_t, (widths[i + 1], widths[i]))
        lo, hi = accumulator_bounds(w, x_t.min, x_t.max)
        act = None
        if i < n - 1:
            out_t = dtype(act_types[i])
            base, step, k = activation_for(out_t)
            # thresholds spread around the typical accumulator (std of a random sum)
            spread = np.sqrt(widths[i]) * max(abs(w_t.min), w_t.max) * max(abs(x_t.min), x_t.max)
            t = rng.normal(0.0, spread / 2, size=(widths[i + 1], k))
            t = np.clip(np.sort(np.round(t).astype(np.int64), axis=1), lo.min(), hi.max() + 1)
            act = Thresholds(values=t, base=base, step=step, out_dtype=out_t)
        pe, simd = folding[i] if folding else (1, 1)
        layers.append(DenseLayer(
            name=f"dense{i}", source=f"synthetic{i}", in_features=widths[i],
            out_features=widths[i + 1], input_dtype=x_t, weight_dtype=w_t, weights=w,
            acc_min=int(lo.min()), acc_max=int(hi.max()), activation=act,
            folding=Folding(pe, simd)))
        x_t = layers[-1].out_dtype
    c = widths[-1]
    out = OutputStage(acc_offset=np.zeros(c, np.int64), acc_scale=np.full(c, 0.5),
                      ops=[ElementwiseOp("add", np.zeros(c, np.float32))], shape=(c,))
    model = Model(name=name, input=inp, layers=layers, output=out, source="synthetic")
    model.validate(name)
    return model


def random_codes(model: Model, n: int, seed: int = 1) -> np.ndarray:
    """n random input code vectors of the model's input type, with all-min and all-max rows."""
    rng = np.random.default_rng(seed)
    t = model.input.out_dtype
    x = random_values(rng, t, (n, model.input.features))
    if n >= 2:
        x[0] = t.min if not t.is_bipolar else -1
        x[1] = t.max
    return x
