"""The rtl/ blocks that compute a layer, each in its own cocotb bench under Verilator against
a Python model: the MVAU (thresholds, accumulators out, requantized), the activation block,
the sliding-window unit, the VVAU, the convolution and the pooling layers; edge cases in
the fast set, the heavier sweeps marked slow, random stalls on tvalid and tready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flow.backends import rtl
from flow.ir import Folding
from flow.ir.requant import ROUNDINGS
from flow.synthetic import random_cnn_model, random_model, requantize_hidden
from tests.helpers.rtl import run_block, slow, window_stage_case

# (in, out, PE, SIMD, input type, weight type, output type or None for the last layer)
MVAU_CASES = [
    (48, 12, 4, 8, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # XNOR-popcount, thresholds
    (30, 6, 3, 5, "BIPOLAR", "BIPOLAR", None),  # XNOR, accumulators out
    (16, 8, 2, 16, "UINT8", "BIPOLAR", "UINT2"),  # weight selects +x / -x
    (12, 6, 6, 3, "INT4", "TERNARY", "INT3"),  # MAC with ternary weights
    (20, 4, 1, 2, "UINT2", "INT3", None),  # MAC, accumulators out
    (96, 16, 2, 4, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # 192-deep weights: block RAM, latency 2
]


MVAU_SLOW = [
    (64, 16, 8, 64, "INT8", "INT8", None),  # one beat per pass: a result every cycle
    (64, 16, 16, 1, "INT8", "INT8", None),  # one lane, all rows at once
    (36, 9, 9, 36, "BIPOLAR", "INT2", "UINT4"),  # input selects +w / -w; one cycle per vector
    (50, 10, 5, 10, "UINT3", "UINT4", "BIPOLAR"),
    (784, 64, 16, 49, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # TFC's first layer
]


def mvau_case(tmp_path: Path, mw: int, mh: int, pe: int, simd: int, in_t: str, w_t: str,
              out_t: str | None, rounding: str | None = None) -> None:
    """rounding: requantized in that rounding (None: thresholds, as drawn)."""
    if out_t is None:
        model = random_model([mw, mh], [w_t], [], in_t, [(pe, simd)], seed=mw + mh)
    else:  # a hidden layer: the next layer only gives it an activation
        model = random_model([mw, mh, 2], [w_t, "INT2"], [out_t], in_t, [(pe, simd), (1, 1)],
                             seed=mw + mh)
    if rounding:
        requantize_hidden(model, seed=mw, rounding=rounding)
    # memory images named relative to the folder the bench runs in: one build for every run
    stage = rtl.dense.stage(model.layers[0], "mvau", Path())
    stage.write_images(tmp_path)
    model.save(tmp_path)
    run_block("mvau", stage.params, {"ir": str(tmp_path), "vectors": 40, "seed": pe}, tmp_path)


@pytest.mark.parametrize("case", MVAU_CASES, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}")
def test_mvau(case: tuple, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case)


@pytest.mark.slow
@pytest.mark.parametrize("case", MVAU_SLOW, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}-{c[2]}x{c[3]}")
def test_mvau_slow(case: tuple, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case)


# requantized: (in, out, PE, SIMD, input type, weight type, output type)
MVAU_REQUANT_CASES = [
    slow((32, 8, 4, 8, "INT8", "INT8", "INT8")),  # the 8-bit layer (fast: test_rtl_model)
    slow((24, 6, 6, 3, "BIPOLAR", "BIPOLAR", "UINT4")),  # XNOR popcounts back to sums first
]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("case", MVAU_REQUANT_CASES, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}")
def test_mvau_requant(case: tuple, rounding: str, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case, rounding=rounding)


# sliding-window unit: (H, W, C, SIMD, kernel, stride, pads (t, l, b, r), ELEM_BITS,
# TERNARY_OUT); the pad value is the largest code (pads are visible in the output)
SWU_CASES = [
    (5, 5, 2, 1, 3, 1, (1, 1, 1, 1), 1, 1),  # BIPOLAR padded taps as 2-bit 0
    (7, 6, 6, 3, 3, 2, (1, 1, 1, 1), 4, 0),  # stride 2, odd sizes, 2 beats a pixel
    (4, 5, 3, 3, 1, 1, (0, 0, 0, 0), 2, 0),  # 1x1: one beat a window
    slow((9, 8, 2, 2, 5, 1, (2, 2, 2, 2), 3, 0)),  # k 5, pad 2
    slow((6, 6, 4, 2, 2, 2, (0, 0, 0, 0), 1, 0)),  # kernel = stride: input-bound as fast
    slow((7, 5, 3, 1, 1, 2, (0, 0, 0, 0), 2, 0)),  # stride beyond kernel: input-bound
    slow((8, 8, 1, 1, 3, 3, (0, 0, 0, 0), 8, 0)),  # kernel = stride 3, unused bottom rows
    slow((3, 3, 4, 4, 3, 1, (2, 2, 2, 2), 1, 1)),  # pad 2 on a 3x3 frame (rows from the pad)
    slow((5, 5, 2, 1, 2, 2, (0, 0, 1, 1), 2, 0)),  # ceil mode's bottom/right pad only
    slow((1, 1, 5, 1, 1, 1, (0, 0, 0, 0), 1, 0)),  # one pixel
    slow((12, 3, 2, 1, 3, 1, (1, 0, 1, 0), 4, 0)),  # tall, padded rows only
    # pads as wide as the kernel: windows of padding only, rows of them before the last
    (4, 5, 2, 1, 1, 1, (2, 1, 3, 2), 3, 0),
    (5, 4, 3, 3, 3, 2, (4, 3, 5, 3), 1, 1),
]


@pytest.mark.parametrize("case", SWU_CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_swu(case: tuple, tmp_path: Path) -> None:
    h, w, c, simd, k, s, (pt, pl, pb, pr), bits, ternary = case
    params = {"H": h, "W": w, "C": c, "SIMD": simd, "KH": k, "KW": k, "SH": s, "SW": s,
              "PT": pt, "PL": pl, "PB": pb, "PR": pr, "ELEM_BITS": bits,
              "PAD_VALUE": (1 << bits) - 1, "TERNARY_OUT": ternary}
    run_block("swu", params, {**params, "frames": 4, "seed": h * w + k}, tmp_path)


# the activation block alone: (in, out, PE, input type, weight type, output type or None,
# requantization rounding or None)
ACTIVATION_CASES = [
    (12, 8, 2, "UINT4", "INT3", "UINT3", None),  # 7 thresholds
    (10, 6, 3, "INT4", "TERNARY", "BIPOLAR", None),  # one threshold, BIPOLAR codes
    (16, 8, 4, "UINT8", "INT8", "INT8", "half_even"),  # requantized, extreme channels
    (16, 8, 4, "UINT8", "INT8", "INT8", "tflite"),
    (9, 4, 4, "INT2", "INT2", None, None),  # none: the accumulators
]


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: f"{c[5]}{'-' + c[6] if c[6] else ''}")
def test_activation(case: tuple, tmp_path: Path) -> None:
    mw, mh, pe, in_t, w_t, out_t, rounding = case
    if out_t is None:
        model = random_model([mw, mh], [w_t], [], in_t, [(pe, 1)], seed=mw)
    else:
        model = random_model([mw, mh, 2], [w_t, "INT2"], [out_t], in_t, [(pe, 1), (1, 1)],
                             seed=mw)
    if rounding:
        requantize_hidden(model, seed=mw, rounding=rounding)
    stage = rtl.dense.stage(model.layers[0], "act", Path())
    stage.write_images(tmp_path)
    model.save(tmp_path)
    keys = ("PE", "ACC_BITS", "N_THRES", "OUT_BITS", "OUT_BASE", "OUT_STEP", "ACTIVATION_FILE",
            "ACTIVATION_STYLE", "REQUANT")
    params = {k: v for k, v in stage.params.items() if k in keys}
    run_block("activation", {**params, "FOLDS": mh // pe},
              {"ir": str(tmp_path), "vectors": 60, "seed": mw}, tmp_path)


# depthwise layers in the vvau alone: (C, H, W) input, input type, layer, PE
VVAU_CASES = [
    ((6, 5, 4), "INT3", {"conv": 0, "k": 3, "pad": 1, "w": "INT2", "act": "UINT2",
                         "depthwise": True}, 2),  # padded taps hold the pad code
    ((4, 5, 5), "BIPOLAR", {"conv": 0, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR",
                            "depthwise": True}, 4),  # 2-bit taps, one channel group
    slow((3, 3, 3), "UINT2", {"conv": 0, "k": 3, "w": "INT3", "depthwise": True},
         1),  # accumulators out, one position
]


@pytest.mark.parametrize("shape, in_t, spec, pe", VVAU_CASES,
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_vvau(shape: tuple[int, int, int], in_t: str, spec: dict[str, Any], pe: int,
              tmp_path: Path) -> None:
    specs = [spec] if "act" not in spec else [spec, {"dense": 2, "w": "INT2"}]
    model = random_cnn_model(shape, in_t, specs, seed=sum(shape))
    layer = model.layers[0]
    layer.folding = Folding(pe, 1)
    model.validate("test_vvau")
    st = rtl.conv.stage(layer, "vvau", Path())
    st.write_images(tmp_path)
    model.save(tmp_path)
    view = rtl.conv.dense_view(layer)
    xt = view.input_dtype
    unit = {k: v for k, v in st.params.items() if k in (
        "PE", "W_BITS", "W_SIGNED", "W_BIPOLAR", "ACC_BITS", "N_THRES", "OUT_BITS", "OUT_BASE",
        "OUT_STEP", "WEIGHTS_FILE", "ACTIVATION_FILE", "WEIGHTS_STYLE", "ACTIVATION_STYLE",
        "REQUANT")}
    params = {**unit, "C": layer.out_channels, "TAPS": layer.window, "IN_BITS": xt.bits,
              "IN_SIGNED": int(xt.signed and not xt.is_bipolar), "IN_BIPOLAR": int(xt.is_bipolar)}
    run_block("vvau", params, {"ir": str(tmp_path), "frames": 4, "seed": 3}, tmp_path)


# (C, H, W) input, input type, layer, (PE, SIMD)
CONV_CASES = [
    ((3, 5, 4), "BIPOLAR", {"conv": 4, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
     (2, 3)),  # padded BIPOLAR taps (2-bit codes) into BIPOLAR weights
    ((4, 6, 6), "INT3", {"conv": 6, "k": 3, "stride": 2, "w": "INT2", "act": "UINT3"},
     (3, 2)),  # stride 2
    ((2, 3, 3), "UINT2", {"conv": 4, "k": 3, "w": "INT3"}, (2, 2)),  # accumulators, 1x1 out
    slow((2, 6, 5), "BIPOLAR", {"conv": 4, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
         (4, 2)),  # XNOR, no padding
    slow((4, 7, 7), "UINT2", {"conv": 3, "k": 5, "pad": 2, "w": "TERNARY", "act": "UINT2"},
         (1, 4)),
    slow((6, 4, 4), "UINT4", {"conv": 4, "k": 1, "w": "INT4", "act": "INT3"}, (4, 6)),
    # depthwise (vvau): channel groups in a memory, BIPOLAR taps as 2-bit codes, stride 2
    ((6, 5, 4), "BIPOLAR", {"conv": 0, "k": 3, "pad": 1, "w": "BIPOLAR", "act": "BIPOLAR",
                            "depthwise": True}, (2, 1)),
    slow((4, 6, 6), "INT3", {"conv": 0, "k": 3, "stride": 2, "w": "INT2", "act": "UINT3",
                             "depthwise": True}, (4, 1)),  # one channel group
    slow((3, 3, 3), "UINT2", {"conv": 0, "k": 3, "w": "INT3", "depthwise": True},
         (1, 1)),  # accumulators, 1x1 out
]


@pytest.mark.parametrize("shape, in_t, spec, folding", CONV_CASES,
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_conv_layer(shape: tuple[int, int, int], in_t: str, spec: dict[str, Any],
                    folding: tuple[int, int], tmp_path: Path) -> None:
    window_stage_case(tmp_path, shape, in_t, spec, folding)


@pytest.mark.slow
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_conv_layer_requant(rounding: str, tmp_path: Path) -> None:
    """An 8-bit padded convolution, requantized."""
    window_stage_case(tmp_path, (3, 5, 5), "INT8",
                      {"conv": 4, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"}, (2, 3),
                      rounding=rounding)


POOL_CASES = [
    ((4, 6, 6), "UINT2", {"pool": 2}, (2, 1)),
    slow((3, 7, 7), "BIPOLAR", {"pool": 3, "stride": 2, "pad": 1}, (3, 1)),  # OR, padded
    slow((2, 5, 5), "INT4", {"pool": 2, "stride": 1}, (1, 1)),  # signed, overlapping
]


@pytest.mark.parametrize("shape, in_t, spec, folding", POOL_CASES,
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_pool_layer(shape: tuple[int, int, int], in_t: str, spec: dict[str, Any],
                    folding: tuple[int, int], tmp_path: Path) -> None:
    window_stage_case(tmp_path, shape, in_t, spec, folding)
