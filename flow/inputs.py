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


def first_samples(x: np.ndarray, limit: int | None) -> np.ndarray:
    """The first `limit` samples (all with None). A limit below 1 is refused: x[:-1] would
    silently drop the last sample and x[:0] leave nothing to run."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | np.integer)
                              or limit < 1):
        raise InputError(f"limit {limit!r}: expected a positive number of samples (1 or more)")
    return x[:limit]


def check_batch(model: Model, x: np.ndarray, where: str) -> np.ndarray:
    """Float inputs must be a batch [N, *shape] of the model's input shape exactly: a batch
    in another layout (channels last for a (C, H, W) model, or flattened) holds the same
    number of values but not the same samples."""
    want = tuple(model.input.shape)
    if tuple(x.shape[1:]) == want:
        if len(x) == 0:
            raise InputError(f"{where}: an empty batch (0 samples)")
        return x
    expected = f"[N, {', '.join(map(str, want))}]"
    layout = " (C, H, W: channels first, as the QONNX graph's input)" if len(want) == 3 else ""
    if tuple(x.shape) == want:
        raise InputError(f"{where}: one sample of shape {x.shape} without the batch axis; "
                         f"the model takes batches {expected}: save x[None]")
    raise InputError(f"{where}: inputs of shape {tuple(x.shape)}, i.e. samples of "
                     f"{tuple(x.shape[1:])}; the model takes {want}: a batch {expected}"
                     f"{layout}")


def read_inputs(path: str | Path, model: Model) -> np.ndarray:
    """A .npy of float inputs [N, *model input shape] (as the QONNX graph takes them): one
    array (not pickled objects), real, finite, at least one sample; errors name the file and
    the first bad sample. Integer and bool arrays are taken as their values."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{path}: is a folder; expected a .npy file")
    if p.exists() and not p.is_file():
        raise InputError(f"{path}: not a regular file (a device or a pipe); expected a .npy file")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(f"{path}: an empty file (0 bytes); expected a .npy array")
    try:
        x = np.load(p, allow_pickle=False)  # never unpickle: a .npy may come from anywhere
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: cannot read a .npy array ({e})") from e
    if isinstance(x, np.lib.npyio.NpzFile):
        names = ", ".join(x.files) or "none"
        x.close()
        raise InputError(f"{path}: a .npz archive (arrays: {names}); expected one .npy array "
                         "(np.save)")
    if not isinstance(x, np.ndarray) or x.ndim == 0:
        raise InputError(f"{path}: a single value; expected a batch [N, ...] of inputs")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
            or x.dtype == bool):
        raise InputError(f"{path}: {x.dtype} values; expected real numbers"
                         + (" (complex inputs have no meaning here)"
                            if np.issubdtype(x.dtype, np.complexfloating) else ""))
    x = check_batch(model, x, str(path))
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: refused
        bad = ~np.isfinite(x.reshape(len(x), -1).astype(np.float32))
    if bad.any():
        n, f = np.argwhere(bad)[0]
        raise InputError(f"{path}: sample {n}, value {f} is {x.reshape(len(x), -1)[n, f]}; "
                         "inputs must be finite in float32 (the graph's input type)")
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
    return quantize_input(model.input, first_samples(x, limit))


def command_codes(model: Model, inputs: str | Path | None, limit: int | None = None
                  ) -> np.ndarray:
    """Input codes for a backend command: the --inputs file, quantized by the IR's input
    stage, or else the model's test split; the first `limit` samples."""
    if inputs is None:
        return test_codes(model, limit)
    try:
        return quantize_input(model.input, first_samples(read_inputs(inputs, model), limit))
    except IRError as e:
        raise InputError(f"{inputs}: {e}") from e
