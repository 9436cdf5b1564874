"""Random IR models for backend tests and benchmarks (no training, no QONNX needed).

Each layer gets random weights of its datatype and random sorted thresholds inside the
accumulator's reachable range, so that every output level occurs on random inputs;
`requantized` swaps multi-bit thresholds for random requantizations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flow.datatypes import DataType, dtype
from flow.ir import (
    AvgPoolLayer,
    Conv2dLayer,
    DenseLayer,
    ElementwiseOp,
    Folding,
    InputStage,
    Layer,
    MaxPoolLayer,
    Model,
    OutputStage,
    Requant,
    Thresholds,
    accumulator_bounds,
    half_even_multiplier,
    quantize_multiplier,
    window_output,
)
from flow.ir.requant import INT32_MAX


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


def random_thresholds(rng: np.random.Generator, channels: int, fan_in: int, w_t: DataType,
                      x_t: DataType, out_t: DataType, lo: np.ndarray, hi: np.ndarray
                      ) -> Thresholds:
    """Sorted thresholds spread around the typical accumulator (the std of a random sum),
    inside the accumulator's range [lo, hi + 1]."""
    base, step, k = activation_for(out_t)
    spread = np.sqrt(fan_in) * max(abs(w_t.min), w_t.max) * max(abs(x_t.min), x_t.max)
    t = rng.normal(0.0, spread / 2, size=(channels, k))
    t = np.clip(np.sort(np.round(t).astype(np.int64), axis=1), lo.min(), hi.max() + 1)
    return Thresholds(values=t, base=base, step=step, out_dtype=out_t)


def _input_stage(shape: tuple[int, ...], in_t: DataType, channels_last: bool = False
                 ) -> InputStage:
    return InputStage(
        shape=shape, preprocess=[ElementwiseOp("mul", np.ones((), np.float32))],
        kind="bipolar" if in_t.is_bipolar else "int", scale=1.0, zero_point=0.0,
        bitwidth=in_t.bits, signed=in_t.signed,
        # TERNARY is a narrow 2-bit quantizer: its codes stop at -1, not -2
        narrow=in_t.signed and not in_t.is_bipolar and in_t.min > -(2 ** (in_t.bits - 1)),
        out_dtype=in_t, channels_last=channels_last)


def _output_stage(c: int) -> OutputStage:
    return OutputStage(acc_offset=np.zeros(c, np.int64), acc_scale=np.full(c, 0.5),
                       ops=[ElementwiseOp("add", np.zeros(c, np.float32))], shape=(c,))


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
    inp = _input_stage((widths[0],), in_t)
    layers: list[Layer] = []
    x_t = in_t
    for i in range(n):
        w_t = dtype(weight_types[i])
        w = random_values(rng, w_t, (widths[i + 1], widths[i]))
        lo, hi = accumulator_bounds(w, x_t.min, x_t.max)
        act = None if i == n - 1 else random_thresholds(
            rng, widths[i + 1], widths[i], w_t, x_t, dtype(act_types[i]), lo, hi)
        pe, simd = folding[i] if folding else (1, 1)
        layers.append(DenseLayer(
            name=f"dense{i}", source=f"synthetic{i}", in_features=widths[i],
            out_features=widths[i + 1], input_dtype=x_t, weight_dtype=w_t, weights=w,
            acc_min=int(lo.min()), acc_max=int(hi.max()), activation=act,
            folding=Folding(pe, simd)))
        x_t = layers[-1].out_dtype
    model = Model(name=name, input=inp, layers=layers, output=_output_stage(widths[-1]),
                  source="synthetic")
    model.validate(name)
    return model


def random_cnn_model(input_shape: tuple[int, int, int], input_type: str,
                     layers: list[dict[str, Any]], seed: int = 0, name: str = "random_cnn"
                     ) -> Model:
    """A CNN on a (C, H, W) input; `layers` in order, each one of
    {"conv": C_out, "k": 3, "stride": 1, "pad": 0, "w": type, "act": type, "depthwise": bool}
    {"pool": k, "stride": k, "pad": 0}                      (max pool)
    {"avgpool": k, "stride": k, "pad": 0, "shift": 2, "rounding": "ROUND", "out": "UINT8"}
    {"dense": width, "w": type, "act": type}                ("act" absent on the last)
    Folding is (1, 1) everywhere; set it after."""
    rng = np.random.default_rng(seed)
    in_t = dtype(input_type)
    c, h, w = input_shape
    shape: tuple[int, int, int] = (h, w, c)
    features = c * h * w
    x_t = in_t
    out: list[Layer] = []
    for i, spec in enumerate(layers):
        last = i == len(layers) - 1
        if "pool" in spec or "avgpool" in spec:
            k = int(spec["pool"] if "pool" in spec else spec["avgpool"])
            st, p = spec.get("stride", k), spec.get("pad", 0)
            o = (window_output(shape[0], k, st, p, p), window_output(shape[1], k, st, p, p), shape[2])
            window: dict[str, Any] = dict(
                name=f"pool{i}", source=f"synthetic{i}", in_shape=shape, out_shape=o,
                kernel=(k, k), stride=(st, st), pads=(p, p, p, p), input_dtype=x_t)
            if "pool" in spec:
                out.append(MaxPoolLayer(**window))
            else:
                out_t = dtype(spec.get("out", "UINT8"))
                out.append(AvgPoolLayer(**window, shift=int(spec.get("shift", 2)),
                                        rounding=spec.get("rounding", "ROUND"),
                                        clamp=(out_t.min, out_t.max), output_dtype=out_t))
        else:
            w_t = dtype(spec["w"])
            if "conv" in spec:
                k, st, p = spec.get("k", 3), spec.get("stride", 1), spec.get("pad", 0)
                dw = bool(spec.get("depthwise", False))
                co = shape[2] if dw else spec["conv"]
                wts = random_values(rng, w_t, (co, k, k, 1 if dw else shape[2]))
                pad_value = 0
                lo_x, hi_x = (min(x_t.min, 0), max(x_t.max, 0)) if p else (x_t.min, x_t.max)
                lo, hi = accumulator_bounds(wts.reshape(co, -1), lo_x, hi_x)
                o = (window_output(shape[0], k, st, p, p), window_output(shape[1], k, st, p, p), co)
                act = None if last else random_thresholds(
                    rng, co, int(wts[0].size), w_t, x_t, dtype(spec["act"]), lo, hi)
                out.append(Conv2dLayer(
                    name=f"conv{i}", source=f"synthetic{i}", in_shape=shape, out_shape=o,
                    kernel=(k, k), stride=(st, st), pads=(p, p, p, p), pad_value=pad_value,
                    group=shape[2] if dw else 1, input_dtype=x_t, weight_dtype=w_t,
                    weights=wts, acc_min=int(lo.min()), acc_max=int(hi.max()), activation=act))
            else:
                n_out = spec["dense"]
                wts = random_values(rng, w_t, (n_out, features))
                lo, hi = accumulator_bounds(wts, x_t.min, x_t.max)
                act = None if last else random_thresholds(
                    rng, n_out, features, w_t, x_t, dtype(spec["act"]), lo, hi)
                out.append(DenseLayer(
                    name=f"dense{i}", source=f"synthetic{i}", in_features=features,
                    out_features=n_out, input_dtype=x_t, weight_dtype=w_t, weights=wts,
                    acc_min=int(lo.min()), acc_max=int(hi.max()), activation=act))
        lay = out[-1]
        x_t, features = lay.out_dtype, lay.out_features
        shape = getattr(lay, "out_shape", shape)
    model = Model(name=name, input=_input_stage(input_shape, in_t, channels_last=True),
                  layers=out, output=_output_stage(out[-1].out_channels), source="synthetic")
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


def random_requant(rng: np.random.Generator, layer: DenseLayer | Conv2dLayer,
                   out_t: DataType, rounding: str = "half_even") -> Requant:
    """A requantization of one layer's accumulators to out_t from its bounds alone, for a
    layer without data (`requantize_hidden` fits a model's to its accumulators): factors
    from the type's span over the accumulator's down to 1/64 of it (so that outputs spread
    and saturate), a bias up to a quarter of the accumulator's range (half_even: with
    fractional bits), a random zero point and clamp; extremes on channels 0-2: the largest
    multiplier, the smallest factor, multiplier 0."""
    c, lo, hi = layer.out_channels, layer.acc_min, layer.acc_max
    spread = max(hi - lo, 1)
    bias = rng.integers(-(spread // 4), spread // 4 + 1, size=c)
    # tflite: a left shift must keep (acc + bias) * 2^shift inside int32: a factor below
    # 2^k takes a shift of at most k (M * 2^(shift - 31) with M >= 2^30)
    top = (max(abs(lo), abs(hi)) + spread // 4) or 1
    reals = (out_t.max - out_t.min) / spread * 2.0 ** rng.uniform(0, 6, size=c)
    reals = np.minimum(reals, 2.0 ** np.floor(np.log2(INT32_MAX / top)) * 0.99)
    a, b = np.sort(rng.integers(out_t.min, out_t.max + 1, size=2))
    clamp = (a, b) if rng.random() < 0.5 else (out_t.min, out_t.max)
    zero_point = int(rng.integers(out_t.min, out_t.max + 1))
    if rounding == "half_even":
        return half_even_requant(rng, reals, bias + rng.uniform(-0.5, 0.5, c), zero_point,
                                 (int(clamp[0]), int(clamp[1])), out_t, extremes=(0, 1, 2))
    m, s = zip(*(quantize_multiplier(float(r)) for r in reals), strict=True)
    multiplier, shift = np.array(m, np.int64), np.array(s, np.int64)
    multiplier[0] = INT32_MAX
    if c > 1:
        multiplier[1], shift[1] = 2**30, -31
    if c > 2:
        multiplier[2] = 0
    return Requant(bias=bias, multiplier=multiplier, shift=shift, zero_point=zero_point,
                   clamp_min=int(clamp[0]), clamp_max=int(clamp[1]), out_dtype=out_t,
                   rounding="tflite")


def half_even_requant(rng: np.random.Generator, reals: np.ndarray, bias: np.ndarray,
                      zero_point: int, clamp: tuple[int, int], out_t: DataType,
                      extremes: tuple[int, ...] = ()) -> Requant:
    """The half_even requantization of factors `reals` and biases in accumulator units
    (`bias`, fractional); the channels listed in `extremes` (up to three) take the largest
    multiplier at shift 31, the smallest factor (1 / 2^62) and multiplier 0."""
    m, n = (np.array(v, np.int64) for v in zip(*(half_even_multiplier(float(r))
                                                  for r in reals), strict=True))
    for ch, (mult, shift) in zip(extremes, ((INT32_MAX, 31), (1, 62), (0, 62)), strict=False):
        if ch < len(m):
            m[ch], n[ch] = mult, shift
    product_bias = np.round(bias * m.astype(np.float64)).astype(np.int64)
    product_bias += rng.integers(-1, 2, len(m)) * (m > 0)  # off the float's rounding too
    return Requant(bias=product_bias, multiplier=m, shift=n, zero_point=zero_point,
                   clamp_min=clamp[0], clamp_max=clamp[1], out_dtype=out_t,
                   rounding="half_even")


def requantize_hidden(model: Model, seed: int = 0, samples: int = 64, extremes: bool = True,
                      rounding: str = "half_even") -> Model:
    """The model with each hidden weighted layer's multi-bit thresholds replaced, in place,
    by a requantization onto the same output type (BIPOLAR outputs keep theirs): per
    channel, a bias centring and a factor spreading its accumulators on random codes over
    the output range (clamped to it, a narrow range for signed types). With `extremes` and
    four channels or more the last three are extremes: multiplier 0, the smallest factor
    (2^30 at shift -31), and the largest multiplier at the largest left shift the
    accumulator bounds allow (saturating); half_even: the largest multiplier at shift 31,
    the smallest factor and multiplier 0, and biases with fractional bits."""
    from flow import golden
    from flow.ir import Requant, quantize_multiplier
    from flow.ir.requant import INT32_MAX, INT32_MIN

    rng = np.random.default_rng(seed)
    x = random_codes(model, samples, seed)
    for lay in model.layers:
        act = getattr(lay, "activation", None)
        if isinstance(act, Thresholds) and not act.out_dtype.is_bipolar:
            out = act.out_dtype
            lay.activation = None
            acc = golden.layer(lay, x).reshape(-1, lay.out_channels)
            clamp_min, clamp_max = out.min + int(out.signed), out.max
            zero_point = (clamp_min + clamp_max) // 2
            real = (clamp_max - clamp_min) / (6 * (acc.std(0) + 1)) * rng.uniform(0.5, 2, acc.shape[1])
            bias = -np.round(acc.mean(0)).astype(np.int64) + rng.integers(-2, 3, acc.shape[1])
            if rounding == "half_even":
                lay.activation = half_even_requant(
                    rng, real, bias + rng.uniform(-0.5, 0.5, len(bias)), zero_point,
                    (clamp_min, clamp_max), out,
                    tuple(range(len(bias) - 3, len(bias))) if extremes and len(bias) >= 4
                    else ())
                x = golden.layer(lay, x)
                continue
            m, shift = np.array([quantize_multiplier(float(r)) for r in real]).T
            lo, hi = lay.acc_min + min(int(bias.min()), 0), lay.acc_max + max(int(bias.max()), 0)
            left_max = 0
            while lo * 2 ** (left_max + 1) >= INT32_MIN and hi * 2 ** (left_max + 1) <= INT32_MAX:
                left_max += 1
            shift = np.minimum(shift, left_max)
            if extremes and len(m) >= 4:
                m[-3:] = [0, 2**30, INT32_MAX]
                shift[-3:] = [0, -31, left_max]
            lay.activation = Requant(bias=bias, multiplier=m.astype(np.int64),
                                     shift=shift.astype(np.int64), zero_point=zero_point,
                                     clamp_min=clamp_min, clamp_max=clamp_max, out_dtype=out,
                                     rounding="tflite")
        x = golden.layer(lay, x)
    model.validate(model.name)
    return model
