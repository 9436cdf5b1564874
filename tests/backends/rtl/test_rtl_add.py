"""The residual network's blocks (issue #26), each in its cocotb bench under Verilator:
axis_fork (one stream to N_OUT consumers, each beat to each once) against a queue per
output, and add_layer (the IR's add: acc = WA*a + WB*b per element, then the activation of
its channel) against a Python model of those semantics with golden's activation, its ROM
image and parameters written by the dense generator's own functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow.backends import rtl
from flow.backends.rtl import pipeline
from flow.datatypes import DataType, dtype
from flow.golden.requant import prepare_activation
from flow.ir import Activation, DenseLayer, Folding, Thresholds
from flow.ir.activation import check_activation
from flow.packing import encode, pack_words
from flow.synthetic import activation_for, random_requant, random_values
from tests.helpers.rtl import run_block


def slow(*values: Any) -> Any:
    return pytest.param(*values, marks=pytest.mark.slow)


# (N_OUT, WIDTH): two consumers (a residual's), more, a 1-bit and a wide beat
FORK_CASES = [(2, 8), slow(3, 1), slow(4, 67)]


@pytest.mark.parametrize("n_out, width", FORK_CASES)
def test_axis_fork(n_out: int, width: int, tmp_path: Path) -> None:
    params = {"N_OUT": n_out, "WIDTH": width}
    run_block("axis_fork", params, {**params, "n": 300, "seed": n_out * 100 + width}, tmp_path)


def accumulator_range(a_t: DataType, b_t: DataType, wa: int, wb: int) -> tuple[int, int]:
    """WA*a + WB*b over every pair of codes."""
    a = [wa * v for v in (a_t.min, a_t.max)]
    b = [wb * v for v in (b_t.min, b_t.max)]
    return min(a) + min(b), max(a) + max(b)


def activation_view(channels: int, pe: int, acc: tuple[int, int], wa: int, wb: int,
                    act: Activation | None) -> DenseLayer:
    """The add's activation as the dense generator sees a layer's (activation_image,
    mvau_params): `channels` outputs over the accumulator range `acc`, PE a fold."""
    return DenseLayer(name="add", source="test_rtl_add", in_features=2, out_features=channels,
                      input_dtype=dtype("INT8"), weight_dtype=dtype("INT8"),
                      weights=np.tile([wa, wb], (channels, 1)), acc_min=acc[0],
                      acc_max=acc[1], activation=act, folding=Folding(pe, 1))


def draw_activation(rng: np.random.Generator, view: DenseLayer, form: str,
                    out_t: DataType) -> Activation:
    """Thresholds onto out_t (every level's threshold anywhere in the accumulator's range,
    one past its end included), or a requantization in rounding `form`."""
    if form != "thresholds":
        return random_requant(rng, view, out_t, form)
    base, step, count = activation_for(out_t)
    values = rng.integers(view.acc_min, view.acc_max + 2, size=(view.out_features, count))
    return Thresholds(values=np.sort(values, axis=1), base=base, step=step, out_dtype=out_t)


def add_reference(a: np.ndarray, b: np.ndarray, wa: int, wb: int,
                  act: Activation | None) -> np.ndarray:
    """The add's outputs [..., C] of codes a, b [..., C]: WA*a + WB*b, then golden's
    activation of each channel."""
    acc = wa * a.astype(np.int64) + wb * b.astype(np.int64)
    return prepare_activation(act, np.int64)(acc)


# (CHANNELS, PE, PIXELS, a's type, b's type, (WA, WB), activation form, output type)
ADD_CASES = [
    (8, 2, 5, "UINT8", "INT8", (1, 1), "thresholds", "UINT2"),
    (8, 4, 3, "INT4", "INT4", (1, -1), "half_even", "INT8"),
    slow((6, 1, 4, "UINT4", "INT4", (2, 1), "tflite", "UINT4")),
    slow((16, 4, 4, "UINT8", "INT8", (3, 1), "thresholds", "INT3")),  # 3: shifts and adds
    slow((4, 4, 6, "INT4", "INT4", (1, 1), "tflite", "INT8")),  # one fold: the ROM's one word
    slow((12, 2, 3, "UINT8", "UINT8", (1, -1), "half_even", "UINT4")),
    slow((3, 1, 5, "INT8", "UINT4", (-2, 1), "thresholds", "INT2")),
    slow((4, 2, 1, "INT4", "UINT2", (1, 1), "thresholds", "UINT1")),  # one pixel a frame
]


@pytest.mark.parametrize("case", ADD_CASES, ids=lambda c: "-".join(map(str, c)))
def test_add_layer(case: tuple, tmp_path: Path) -> None:
    channels, pe, pixels, a_name, b_name, (wa, wb), form, out_name = case
    a_t, b_t, out_t = dtype(a_name), dtype(b_name), dtype(out_name)
    rng = np.random.default_rng(channels * 100 + pixels)
    acc = accumulator_range(a_t, b_t, wa, wb)
    view = activation_view(channels, pe, acc, wa, wb, None)
    view.activation = draw_activation(rng, view, form, out_t)
    check_activation(view.activation, "test_add_layer", channels, *acc)

    frames = 6
    a = random_values(rng, a_t, (frames * pixels, channels))
    b = random_values(rng, b_t, (frames * pixels, channels))
    a[0], b[0], a[-1], b[-1] = a_t.min, b_t.min, a_t.max, b_t.max  # the operands' ends
    y = add_reference(a, b, wa, wb, view.activation)

    image = "add_activation.mem"
    (tmp_path / image).write_text(rtl.dense.activation_image(view) or "")
    act_keys = ("ACC_BITS", "N_THRES", "OUT_BITS", "OUT_BASE", "OUT_STEP", "ACTIVATION_FILE",
                "ACTIVATION_STYLE", "REQUANT")
    act_params = {k: v for k, v in rtl.dense.mvau_params(view, "", image).items()
                  if k in act_keys}
    params = {"CHANNELS": channels, "PE": pe, "PIXELS": pixels,
              "A_BITS": a_t.bits, "A_SIGNED": int(a_t.signed), "B_BITS": b_t.bits,
              "B_SIGNED": int(b_t.signed), "WA": wa, "WB": wb, **act_params}

    def words(codes: np.ndarray, t: DataType) -> list[int]:
        return pack_words(encode(codes, t).reshape(-1, pe), t.bits)

    latency = (pipeline.ROM_LATENCY + pipeline.activation_latency(view.activation)
               + pipeline.FIFO_LATENCY)
    run_block("add_layer", params, {
        "a_words": words(a, a_t), "b_words": words(b, b_t), "y_words": words(y, out_t),
        "beats_per_frame": pixels * channels // pe, "latency": latency, "seed": pe + pixels,
    }, tmp_path)


def test_add_reference() -> None:
    """The model itself: WA*a + WB*b per element, then each channel's thresholds."""
    act = Thresholds(values=np.array([[0], [5]]), base=0, step=1, out_dtype=dtype("UINT1"))
    a, b = np.array([[3, 3], [0, 7]]), np.array([[-3, 1], [-1, -1]])
    np.testing.assert_array_equal(add_reference(a, b, 2, 1, None), [[3, 7], [-1, 13]])
    np.testing.assert_array_equal(add_reference(a, b, 2, 1, act), [[1, 1], [0, 1]])
