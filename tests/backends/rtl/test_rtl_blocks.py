"""The rtl/ blocks, each in its own cocotb bench (tests/cocotb/tb_<block>.py) under
Verilator against a Python model: several parameter sets (edge cases in the fast set, the
heavier sweeps marked slow), random data and edge values, random stalls on tvalid and
tready where the block has a stream."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from flow.backends import rtl
from flow.ir import Folding
from flow.ir.requant import ROUNDINGS
from flow.packing import mem_image
from flow.synthetic import random_cnn_model, random_model, requantize_hidden
from tests.helpers.rtl import TB_DIR, run_block, window_stage_case


def test_every_block_has_a_bench() -> None:
    blocks = [p.stem for p in rtl.block_sources() if not p.stem.endswith("_pkg")]
    assert [b for b in blocks if not (TB_DIR / f"tb_{b}.py").exists()] == []


def test_run_bench_counts_extra_beats(tmp_path: Path) -> None:
    """The harness's own check: output beats beyond the n_out expected are counted."""
    folder = rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    beats = [(k, int(k % 5 == 4)) for k in range(10)]
    r = rtl.run_bench(folder, tmp_path, beats, 8, trailing_cycles=20)
    assert r.beats == beats[:8]
    assert r.extra_beats == len(r.in_cycles) - 8 >= 1  # accepted while the 8th left
    assert r.out_cycles == list(range(1, 9))  # a beat a cycle, the FIFO's one cycle behind


def test_run_bench_times_out(tmp_path: Path) -> None:
    """A design that never delivers ends the simulation at the cycle budget with a clear
    error, instead of hanging: here the output is never ready."""
    folder = rtl.build_stream(rtl.block_sources(), "axis_fifo", 8, 8, {"WIDTH": 8, "DEPTH": 4})
    with pytest.raises(RuntimeError, match=r"timed out after 500 cycles with 4 of 10 input "
                                           r"beats taken and 0 of 10 output beats received"):
        rtl.run_bench(folder, tmp_path, [(k, 0) for k in range(10)], 10, ready_prob=0.0,
                      max_cycles=500)


# depths up to 16 hold a thermometer level, deeper ones a binary count
@pytest.mark.parametrize("width, depth", [(8, 4), (33, 1), (1, 5), (3, 16), (5, 21)])
def test_axis_fifo(width: int, depth: int, tmp_path: Path) -> None:
    params = {"WIDTH": width, "DEPTH": depth}
    run_block("axis_fifo", params, {**params, "n": 200, "seed": width}, tmp_path)


# (N, IN_BITS, SIGNED, STAGE_LEVELS): odd sizes, one operand, combinational, every level
TREE_CASES = [(49, 1, 0, 2), (64, 1, 0, 2), (13, 9, 1, 2), (7, 4, 1, 1), (1, 3, 1, 2),
              (33, 17, 1, 3), (255, 1, 0, 2), (6, 5, 0, 0)]


@pytest.mark.parametrize("n, bits, signed, k", TREE_CASES)
def test_adder_tree(n: int, bits: int, signed: int, k: int, tmp_path: Path) -> None:
    params = {"N": n, "IN_BITS": bits, "SIGNED": signed, "STAGE_LEVELS": k}
    run_block("adder_tree", params, {**params, "vectors": 200, "seed": n}, tmp_path)


DWC_CASES = [(1, 16, 8), (2, 4, 6), (8, 6, 4), (3, 1, 7), (4, 5, 5)]


@pytest.mark.parametrize("bits, a, b", DWC_CASES)
def test_axis_dwc(bits: int, a: int, b: int, tmp_path: Path) -> None:
    params = {"ELEM_BITS": bits, "IN_ELEMS": a, "OUT_ELEMS": b}
    run_block("axis_dwc", params, {**params, "frames": 30, "seed": a * 10 + b}, tmp_path)


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


def slow(*values: Any) -> Any:
    """A parameter set of the slow run only."""
    return pytest.param(*values, marks=pytest.mark.slow)


# requantized: (in, out, PE, SIMD, input type, weight type, output type)
MVAU_REQUANT_CASES = [
    slow((32, 8, 4, 8, "INT8", "INT8", "INT8")),  # the 8-bit layer (fast: test_rtl_model)
    slow((24, 6, 6, 3, "BIPOLAR", "BIPOLAR", "UINT4")),  # XNOR popcounts back to sums first
]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("case", MVAU_REQUANT_CASES, ids=lambda c: f"{c[4]}x{c[5]}-{c[6]}")
def test_mvau_requant(case: tuple, rounding: str, tmp_path: Path) -> None:
    mvau_case(tmp_path, *case, rounding=rounding)


# (WIDTH, DEPTH, STYLE, with an image): one word, non-power-of-two depths, words wider than
# 64 bits, block RAM deeper than the LUT limit; no image: all zero
ROM_CASES = [(8, 5, "logic", True), (130, 64, "block", True), (1, 1, "logic", True),
             slow(1, 1, "block", True), slow(33, 192, "block", True),
             slow(64, 64, "logic", True), slow(12, 7, "block", False), slow(5, 2, "logic", False)]


@pytest.mark.parametrize("width, depth, style, image", ROM_CASES)
def test_rom(width: int, depth: int, style: str, image: bool, tmp_path: Path) -> None:
    rng = random.Random(width * 1000 + depth)
    words = [rng.getrandbits(width) for _ in range(depth)]
    words[0], words[-1] = 0, (1 << width) - 1
    if image:
        (tmp_path / "rom.mem").write_text(mem_image(words, width))
    params = {"WIDTH": width, "DEPTH": depth, "MEM_FILE": "rom.mem" if image else "",
              "STYLE": style}
    run_block("rom", params, {"DEPTH": depth, "words": words if image else [], "reads": 200,
                              "seed": depth}, tmp_path)


# (PE, SIMD): one lane, odd and power-of-two trees, many rows
XNOR_CASES = [(1, 1), (3, 49), (2, 64), slow(4, 7), slow(1, 255), slow(16, 8), slow(5, 2)]


@pytest.mark.parametrize("pe, simd", XNOR_CASES)
def test_mvau_xnor_dot(pe: int, simd: int, tmp_path: Path) -> None:
    params = {"PE": pe, "SIMD": simd}
    run_block("mvau_xnor_dot", params, {**params, "vectors": 200, "seed": pe * simd}, tmp_path)


# (PE, SIMD, X_BITS, X_SIGNED, X_BIPOLAR, W_BITS, W_SIGNED, W_BIPOLAR)
MAC_CASES = [
    (2, 1, 8, 1, 0, 8, 1, 0),  # one lane, INT8 x INT8 at the extremes
    (1, 16, 1, 0, 1, 3, 1, 0),  # BIPOLAR input selects +w / -w
    (3, 9, 8, 0, 0, 1, 0, 1),  # UINT8 x BIPOLAR weights: +x / -x
    slow((4, 64, 4, 1, 0, 4, 1, 0)),  # deep tree
    slow((1, 3, 16, 1, 0, 16, 1, 0)),  # the widest products
    slow((2, 8, 1, 0, 1, 1, 0, 1)),  # both BIPOLAR
    slow((3, 7, 16, 0, 0, 1, 1, 0)),  # UINT16 x INT1
    slow((1, 49, 1, 0, 0, 5, 0, 0)),  # unsigned x unsigned
    slow((2, 5, 4, 1, 0, 2, 1, 0)),  # INT4 x INT2 (ternary weights' field)
]
MAC_PARAMS = ("PE", "SIMD", "X_BITS", "X_SIGNED", "X_BIPOLAR", "W_BITS", "W_SIGNED", "W_BIPOLAR")


@pytest.mark.parametrize("case", MAC_CASES, ids=lambda c: "-".join(map(str, c)))
def test_mvau_mac_dot(case: tuple[int, ...], tmp_path: Path) -> None:
    params = dict(zip(MAC_PARAMS, case, strict=True))
    run_block("mvau_mac_dot", params, {**params, "vectors": 200, "seed": sum(case)}, tmp_path)


# (PE, ACC_BITS, N_THRES, OUT_BITS, OUT_BASE, OUT_STEP)
THRESHOLD_CASES = [
    (2, 8, 3, 2, 0, 1),  # UINT2 out
    (1, 2, 1, 1, 0, 1),  # one threshold, 2-bit accumulator: BIPOLAR out
    (3, 16, 7, 3, -4, 1),  # INT3 out
    slow((4, 24, 255, 8, 0, 1)),  # deep tree, UINT8 out
    slow((1, 5, 15, 4, -8, 1)),  # INT4 out
    slow((2, 10, 2, 2, -1, 2)),  # step 2: -1, 1, 3
    slow((5, 1, 2, 2, 0, 1)),  # 1-bit accumulators
    slow((16, 12, 1, 1, 0, 1)),  # many rows, one threshold
]
THRESHOLD_PARAMS = ("PE", "ACC_BITS", "N_THRES", "OUT_BITS", "OUT_BASE", "OUT_STEP")


@pytest.mark.parametrize("case", THRESHOLD_CASES, ids=lambda c: "-".join(map(str, c)))
def test_mvau_thresholds(case: tuple[int, ...], tmp_path: Path) -> None:
    params = dict(zip(THRESHOLD_PARAMS, case, strict=True))
    run_block("mvau_thresholds", params, {**params, "vectors": 200, "seed": sum(case)},
              tmp_path)


# (PE, ACC_BITS, BIAS_BITS, SUM_BITS, LSH_MAX, RSH_MAX, OUT_BITS, ZERO_POINT, CLAMP_MIN,
# CLAMP_MAX)
REQUANT_CASES = [
    (3, 20, 16, 21, 0, 31, 8, -5, -127, 127),  # INT8, right shifts up to 31
    slow((1, 32, 32, 32, 0, 31, 32, 0, -(2**31), 2**31 - 1)),  # the int32 sum's ends, no clamp
    (2, 2, 1, 2, 30, 1, 8, 3, -128, 127),  # left shift 30: the product's widest input
    slow((4, 12, 8, 13, 5, 20, 4, 3, 0, 15)),  # both shifts, UINT4 around a zero point
    slow((2, 24, 32, 32, 0, 8, 16, -300, -32768, 1000)),  # wide bias, narrow clamp
]
REQUANT_PARAMS = ("PE", "ACC_BITS", "BIAS_BITS", "SUM_BITS", "LSH_MAX", "RSH_MAX", "OUT_BITS",
                  "ZERO_POINT", "CLAMP_MIN", "CLAMP_MAX")


def requant_block(case: dict[str, int]) -> dict[str, Any]:
    """requant.sv's parameters from a case's (the bench's job): PE, ACC_BITS, OUT_BITS and
    the rest as the REQUANT value's fields."""
    fields = {k.lower(): v for k, v in case.items() if k not in ("PE", "ACC_BITS", "OUT_BITS")}
    return {"PE": case["PE"], "ACC_BITS": case["ACC_BITS"], "OUT_BITS": case["OUT_BITS"],
            "REQUANT": rtl.RequantParams(**{"half_even": False, **fields})}


@pytest.mark.parametrize("case", REQUANT_CASES, ids=lambda c: "-".join(map(str, c[:7])))
def test_requant(case: tuple[int, ...], tmp_path: Path) -> None:
    params = dict(zip(REQUANT_PARAMS, case, strict=True))
    run_block("requant", requant_block(params),
              {**params, "vectors": 400, "seed": sum(case[:7])}, tmp_path)


# half_even: (PE, ACC_BITS, BIAS_BITS, PRODUCT_BITS, RSH_MIN, RSH_MAX, OUT_BITS, ZERO_POINT,
# CLAMP_MIN, CLAMP_MAX)
HALF_EVEN_CASES = [
    (3, 20, 48, 51, 1, 62, 8, -5, -127, 127),  # INT8; shifts beyond the product saturate
    (2, 4, 21, 20, 3, 62, 4, 3, 0, 15),  # a bias wider than the product, UINT4 at a zero point
    slow((1, 32, 63, 63, 1, 62, 32, 0, -(2**31), 2**31 - 1)),  # |p| up to 2^62, no clamp
    slow((4, 12, 30, 43, 20, 31, 16, -300, -32768, 1000)),  # shifts 20..31, narrow clamp
    slow((2, 8, 12, 40, 1, 1, 16, 7, -20000, 20000)),  # shift 1 only
]
HALF_EVEN_PARAMS = ("PE", "ACC_BITS", "BIAS_BITS", "PRODUCT_BITS", "RSH_MIN", "RSH_MAX",
                    "OUT_BITS", "ZERO_POINT", "CLAMP_MIN", "CLAMP_MAX")


@pytest.mark.parametrize("case", HALF_EVEN_CASES, ids=lambda c: "-".join(map(str, c[:7])))
def test_requant_half_even(case: tuple[int, ...], tmp_path: Path) -> None:
    params = {"HALF_EVEN": 1, **dict(zip(HALF_EVEN_PARAMS, case, strict=True))}
    run_block("requant", requant_block(params),
              {**params, "vectors": 600, "seed": sum(case[:7])}, tmp_path)


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


# (C, PE, TAPS, ELEM_BITS, SIGNED): BIPOLAR (OR), signed codes, one tap, one group
REDUCE_CASES = [(4, 2, 4, 1, 0), (6, 2, 9, 4, 1), slow(3, 3, 1, 3, 0), slow(5, 1, 2, 8, 1)]


@pytest.mark.parametrize("c, pe, taps, bits, signed", REDUCE_CASES)
def test_pool_reduce(c: int, pe: int, taps: int, bits: int, signed: int,
                     tmp_path: Path) -> None:
    params = {"C": c, "PE": pe, "TAPS": taps, "ELEM_BITS": bits, "SIGNED": signed}
    run_block("pool_reduce", params, {**params, "windows": 30, "seed": c + taps}, tmp_path)


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
