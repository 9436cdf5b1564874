"""What a model is run on: the test split of the dataset its IR names or a user's .npy, as
input codes, and the one input contract that every backend relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow import data
from flow.golden import quantize_input
from flow.ir import IRError, Model


class InputError(ValueError):
    """Inputs that the model cannot take; the message names the file or sample."""


def test_split(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """The test split (float inputs, labels) of the dataset the model's IR names."""
    spec = model.meta.get("data")
    if not spec:
        raise data.DataError(f"{model.name}: the IR names no dataset (compiled with no "
                             "--dataset); pass --inputs X.npy")
    ds = data.load(spec, int(model.meta.get("seed", 0)))
    return ds.x_test.reshape((len(ds.x_test), *model.input.shape)), ds.y_test


def read_inputs(path: str | Path) -> np.ndarray:
    """A .npy of float inputs [N, ...] (as the QONNX graph takes them): real, finite, at
    least one sample; errors name the file and the first bad sample."""
    try:
        x = np.load(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read a .npy array ({e})") from e
    if not isinstance(x, np.ndarray) or x.ndim == 0:
        raise InputError(f"{path}: a single value; expected a batch [N, ...] of inputs")
    if len(x) == 0:
        raise InputError(f"{path}: an empty batch (0 samples)")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
            or x.dtype == bool):
        raise InputError(f"{path}: {x.dtype} values; expected real numbers"
                         + (" (complex inputs have no meaning here)"
                            if np.issubdtype(x.dtype, np.complexfloating) else ""))
    bad = ~np.isfinite(x.reshape(len(x), -1).astype(np.float64))
    if bad.any():
        n, f = np.argwhere(bad)[0]
        raise InputError(f"{path}: sample {n}, value {f} is {x.reshape(len(x), -1)[n, f]}; "
                         "inputs must be finite")
    return x


def check_codes(model: Model, codes: np.ndarray, where: str = "inputs") -> np.ndarray:
    """The input contract: int64 codes [N, features] of the model's input datatype
    (BIPOLAR: -1 or +1 only). Every backend gets codes that passed this."""
    a = np.asarray(codes)
    t = model.input.out_dtype
    if a.ndim != 2 or a.shape[1] != model.input.features:
        raise InputError(f"{where}: input codes of shape {a.shape}; the model takes "
                         f"[N, {model.input.features}]")
    integral = np.issubdtype(a.dtype, np.integer) or (
        np.issubdtype(a.dtype, np.floating) and bool(np.all(np.isfinite(a)))
        and bool(np.all(a == np.round(a))))
    if not integral:
        raise InputError(f"{where}: input codes must be integers (found {a.dtype})")
    a = a.astype(np.int64)
    bad = ((a != -1) & (a != 1)) if t.is_bipolar else ((a < t.min) | (a > t.max))
    if bad.any():
        n, f = np.argwhere(bad)[0]
        raise InputError(f"{where}: sample {n}, feature {f}: code {a[n, f]} is not a {t} value"
                         + (" (-1 or +1)" if t.is_bipolar else f" ({t.min}..{t.max})"))
    return a


def test_codes(model: Model, limit: int | None = None) -> np.ndarray:
    """Integer input codes of the model's test split, quantized by its input stage."""
    x, _ = test_split(model)
    return quantize_input(model.input, x[:limit])


def command_codes(model: Model, inputs: str | Path | None, limit: int | None = None
                  ) -> np.ndarray:
    """Input codes for a backend command: the --inputs file, quantized by the IR's input
    stage, or else the model's test split; the first `limit` samples."""
    if inputs is None:
        return test_codes(model, limit)
    try:
        return quantize_input(model.input, read_inputs(inputs)[:limit])
    except IRError as e:
        raise InputError(f"{inputs}: {e}") from e
