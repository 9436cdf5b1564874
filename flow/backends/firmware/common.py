"""What every part of the firmware backend shares: its error, how activations are stored,
C literals, the stored biases (int32, and the half_even requantization's int64 product
bias), and the hand-written sources (runtime kernels and templates) in the source tree's
firmware/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow.datatypes import DataType
from flow.ir import Model, Requant
from flow.resources import source_dir

KB = 1024
RUNNER = "qnn_runner.c"  # the test runner: built with the model, never packaged
COMPONENT = "qflow_model"  # the ESP-IDF component's name and folder


class FirmwareError(ValueError):
    """A model the firmware cannot hold or run; the message names the layer or budget."""


# How an activation is stored: as bits (1 for +1, 32 per word) where it feeds a kernel that
# reads bits (the XNOR kernel); as int8 everywhere else, BIPOLAR as -1/+1 and UINT8 shifted
# down by 128 (storage_offset).


def storage_offset(t: DataType) -> int:
    """Value subtracted before storing an activation in int8 (only UINT8 needs it)."""
    return 128 if (not t.is_bipolar and t.max > 127) else 0


def coded_output(model: Model) -> bool:
    """The last layer ends in an activation quantizer: its codes are the model's outputs."""
    return model.layers[-1].activation is not None


def buffer_bytes(n: int, as_bits: bool) -> int:
    """Arena bytes for n activations stored as bits or as int8, in whole 32-bit words."""
    return 4 * ((n + 31) // 32) if as_bits else 4 * ((n + 3) // 4)


def input_ctype(model: Model) -> str:
    """The C type of one input code as the caller passes it (qflow_input_t)."""
    t = model.input.out_dtype
    return "uint8_t" if not t.signed and not t.is_bipolar else "int8_t"


def c_literals(ctype: str, a: np.ndarray) -> list[str]:
    vals = [str(int(v)) for v in np.asarray(a).reshape(-1)]
    if ctype == "int32_t":  # INT32_MIN is not a literal in C
        vals = ["(-2147483647 - 1)" if v == "-2147483648" else v for v in vals]
    if ctype == "uint32_t":
        vals = [v + "u" for v in vals]
    return vals


def c_array(ctype: str, name: str, a: np.ndarray, per_line: int = 16) -> str:
    """`const ctype name[n] = {...};` (a one-element zero array for an empty one)."""
    vals = c_literals(ctype, a)
    lines = [", ".join(vals[k:k + per_line]) for k in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines) or "0"
    return f"const {ctype} {name}[{max(len(vals), 1)}] = {{\n    {body}\n}};\n"


def runtime_dir() -> Path:
    """The source tree's firmware/: the qnn runtime, the runner and the templates."""
    return source_dir("firmware")


def runtime_sources() -> list[Path]:
    """The runtime library (kernels and headers), without the test runner."""
    files = sorted(runtime_dir().glob("qnn*.[ch]"))
    return [f for f in files if f.name != RUNNER]


def template_dir() -> Path:
    """firmware/templates/: project/ and component/ (the generated ESP-IDF project) and
    harness/ (the C of the firmware tests and benchmarks)."""
    return runtime_dir() / "templates"


def template_files(folder: str) -> list[Path]:
    return sorted(f for f in (template_dir() / folder).rglob("*") if f.is_file())


def requant_bias(act: Requant, corrections: np.ndarray | None, at: str) -> np.ndarray | None:
    """A requantized plan's `bias`: the storage corrections of the accumulator, with tflite's
    own bias (half_even's is in the product's units: DensePlan.c_bias folds it)."""
    b = corrections if act.rounding == "half_even" else act.bias + (
        0 if corrections is None else corrections)
    return int32_or_none(b if b is not None and b.any() else None, at)


def int32_or_none(a: np.ndarray | None, at: str) -> np.ndarray | None:
    if a is None:
        return None
    if a.min() < -(2**31) or a.max() >= 2**31:
        raise FirmwareError(f"{at}: bias outside int32")
    return a.astype(np.int32)


def product_bias(r: Requant, corrections: np.ndarray | None, at: str) -> np.ndarray:
    """half_even's stored int64 product bias: the IR's bias B, the accumulator's storage
    corrections d times the multiplier (exact), and the rounding's 2^(n - 1) (qnn.h)."""
    d = corrections.tolist() if corrections is not None else [0] * len(r.bias)
    c = [b + k * m + 2 ** (n - 1) for b, k, m, n in zip(r.bias.tolist(), d, r.multiplier.tolist(),
                                                       r.shift.tolist(), strict=True)]
    if max(map(abs, c), default=0) >= 2**63:
        raise FirmwareError(f"{at}: requantization bias with the storage corrections leaves "
                            "int64")
    return np.array(c, np.int64)
