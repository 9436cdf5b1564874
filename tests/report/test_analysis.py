"""SQNR against its closed form, and the 45 nm energy model against hand counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flow.datatypes import dtype
from flow.ir import DenseLayer, Thresholds
from flow.report import analysis, cost


@pytest.mark.parametrize("bits", range(1, 9))
def test_sqnr_uniform_midrise_is_6_02_db_per_bit(bits: int) -> None:
    # data uniform over [-1, 1): power 1/3; error uniform over one step D = 2 / 2^b:
    # power D^2 / 12, so SQNR = 10 log10(4 / D^2) = 20 b log10(2) = 6.02 b dB
    x = np.random.default_rng(bits).uniform(-1.0, 1.0, 1_000_000)
    step = 2.0 / 2**bits
    q = step * (np.floor(x / step) + 0.5)
    assert analysis.sqnr_db(x, q) == pytest.approx(20 * bits * math.log10(2), abs=0.2)
    assert analysis.sqnr_db(x, q) == pytest.approx(6.02 * bits, abs=0.2)


def test_sqnr_per_channel_exact_and_silent_channels() -> None:
    x = np.array([[1.0, 0.0, 0.5], [-1.0, 0.0, 0.25]])
    q = np.array([[1.0, 0.0, 0.5], [-0.5, 0.0, 0.25]])
    pc = analysis.sqnr_db(x, q, axis=1)
    assert pc[0] == pytest.approx(10 * math.log10((1 + 1) / 0.25))  # error only at (1, 0)
    assert np.isnan(pc[1]) and np.isposinf(pc[2])
    s = analysis.summarize(analysis.sqnr_db(x, q), pc)
    assert (s["channels_exact"], s["channels_no_signal"]) == (1, 1)
    assert s["per_channel_db"][1:] == [None, None] and not s["exact"]
    assert analysis.summarize(analysis.sqnr_db(x, x), analysis.sqnr_db(x, x, axis=1))["exact"]


def test_weight_sqnr_int8_matches_closed_form() -> None:
    from brevitas.nn import QuantLinear

    from flow.train.quantizers import weight_quant

    torch.manual_seed(0)
    layer = QuantLinear(512, 512, bias=False,
                        weight_quant=weight_quant({"quant": "int", "bits": 8, "po2": False}))
    torch.nn.init.uniform_(layer.weight, -1.0, 1.0)
    (row,) = analysis.weight_sqnr(torch.nn.Sequential(layer))
    # narrow INT8 with scale max|w| / 127: step D ~ 1 / 127, SQNR = (1/3) / (D^2 / 12)
    step = float(layer.weight.detach().abs().max()) / 127
    assert row["per_tensor_db"] == pytest.approx(10 * math.log10(4 / step**2), abs=0.2)
    assert row["channels"] == 512 and row["layer"] == "dense0"


def test_activation_sqnr_hooks_see_the_input_quantizer() -> None:
    from flow.train.models import build

    spec = {"hidden": [16], "input": {"quant": "uint", "bits": 8, "max_val": 1.0},
            "weight": {"quant": "int", "bits": 4}, "act": {"quant": "uint", "bits": 4}}
    model = build(spec, (1, 8, 8), 10).eval()
    x = np.random.default_rng(0).random((4000, 1, 8, 8), dtype=np.float32)
    rows = analysis.activation_sqnr(model, x, batch=1000)
    assert [r["layer"] for r in rows] == ["input", "dense0"]
    # UINT8 with a power-of-two step 1/256 on uniform [0, 1): (1/3) / (D^2 / 12)
    assert rows[0]["per_tensor_db"] == pytest.approx(10 * math.log10(4 * 256**2), abs=0.2)
    assert rows[0]["samples"] == 4000 and rows[0]["channels"] == 64


def test_scaling_laws_pass_through_the_table() -> None:
    assert cost.int_add_pj(8) == 0.03 and cost.int_add_pj(32) == 0.1
    assert cost.int_mult_pj(8, 8) == 0.2 and cost.int_mult_pj(32, 32) == 3.1
    assert cost.int_add_pj(1) == pytest.approx(0.03 / 8)  # linear below 8b
    assert cost.int_mult_pj(4, 2) == pytest.approx(0.2 * 8 / 64)  # w*a below 8x8
    assert cost.int_add_pj(20) == pytest.approx(0.03 + 0.07 * 12 / 24)  # between points


def _layer(w_t: str, a_t: str, n_in: int, n_out: int, count: int, acc: tuple[int, int],
           out_t: str) -> DenseLayer:
    thr = Thresholds(np.zeros((n_out, count), dtype=np.int64), base=0, step=1,
                     out_dtype=dtype(out_t))
    return DenseLayer("dense0", "test", n_in, n_out, dtype(a_t), dtype(w_t),
                      np.ones((n_out, n_in), dtype=np.int64), acc[0], acc[1], thr)


def test_energy_of_a_hand_counted_int4_layer() -> None:
    # 16 inputs UINT4 x INT4 weights -> 8 outputs UINT4 (15 thresholds each);
    # accumulator worst case 16 * [-8, 7] * 15 = [-1920, 1680] -> INT12
    layer = _layer("INT4", "UINT4", 16, 8, 15, (-1920, 1680), "UINT4")
    c = cost.quantized_layer_cost(layer, last=False)
    mult = 0.2 * (4 * 4) / (8 * 8)  # quadratic below 8x8 from int mult 8b = 0.2 pJ
    add12 = 0.03 + (0.1 - 0.03) * (12 - 8) / (32 - 8)  # linear from 8b 0.03 to 32b 0.1 pJ
    compute = 128 * (mult + add12) + 8 * 15 * add12  # MACs + threshold comparisons
    words = 128 * 4 / 32 + 8 * 15 * 12 / 32 + 16 * 4 / 32 + 8 * 4 / 32  # W, T, in, out
    assert (c["macs"], c["acc_bits"], c["datapath"]) == (128, 12, "int-mac")
    assert c["compute_pj"] == pytest.approx(compute)
    assert c["memory_pj"] == pytest.approx(words * 5.0)  # 32-bit SRAM read 5 pJ
    assert c["total_pj"] == pytest.approx(compute + words * 5.0)
    assert c["weight_bytes"] == 64 and c["aux_bytes"] == 8 * 15 * 12 / 8

    f = cost.float32_layer_cost(layer, last=False)
    f_compute = 128 * (3.7 + 0.9) + 8 * (3.7 + 0.9) + 8 * 0.9  # MACs, batch norm, clamp
    f_words = 128 + 8 * 2 + 16 + 8
    assert f["compute_pj"] == pytest.approx(f_compute)
    assert f["memory_pj"] == pytest.approx(f_words * 5.0)


def test_energy_of_a_hand_counted_xnor_layer() -> None:
    layer = _layer("BIPOLAR", "BIPOLAR", 64, 64, 1, (-64, 64), "BIPOLAR")
    c = cost.quantized_layer_cost(layer, last=False)
    bit_add = 0.03 / 8  # a 1-bit add, linear from int add 8b
    # popcount of 64 bits: 32 1-bit + 16 2-bit + 8 3-bit + 4 4-bit + 2 5-bit + 1 6-bit adds
    tree = (32 * 1 + 16 * 2 + 8 * 3 + 4 * 4 + 2 * 5 + 1 * 6) * bit_add
    per_output = 64 * bit_add + tree + 7 * bit_add  # XNORs, tree, one 7-bit comparison
    assert c["datapath"] == "xnor-popcount" and c["acc_bits"] == 7
    assert c["compute_pj"] == pytest.approx(64 * per_output)
    words = 64 * 64 / 32 + 64 * 7 / 32 + 64 / 32 + 64 / 32
    assert c["memory_pj"] == pytest.approx(words * 5.0)
    assert cost.popcount_tree(64) == [(32, 1), (16, 2), (8, 3), (4, 4), (2, 5), (1, 6)]


def test_cost_model_totals_and_ratios() -> None:
    from flow.synthetic import random_model

    model = random_model([64, 32, 32, 16, 10], ["INT4", "BIPOLAR", "TERNARY", "BIPOLAR"],
                         ["BIPOLAR", "UINT2", "BIPOLAR"])
    c = cost.cost_model(model)
    q, f = c["quantized"], c["float32"]
    assert [r["datapath"] for r in q["layers"]] == ["int-mac", "xnor-popcount", "add-sub",
                                                    "xnor-popcount"]
    assert q["total"]["macs"] == sum(ly.in_features * ly.out_features for ly in model.layers)
    assert q["total"]["total_pj"] == pytest.approx(sum(r["total_pj"] for r in q["layers"]))
    assert q["total"]["weight_bytes"] == (64 * 32 * 4 + 32 * 32 + 32 * 16 * 2 + 16 * 10) / 8
    assert f["total"]["weight_bytes"] == 4 * q["total"]["macs"]
    assert c["ratio_float32_over_quantized"]["total_pj"] > 10
    assert {t["op"] for t in c["table_pj"]} >= {"int_add", "fp_mult", "sram_read", "dram_read"}


def test_cost_model_of_a_cnn() -> None:
    """MACs = OH x OW x C_out x kh x kw x C_in / group, weights counted once per channel,
    pools compare kh x kw - 1 codes per output value and hold no weights."""
    from flow.synthetic import random_cnn_model

    model = random_cnn_model((3, 9, 9), "UINT8", [
        {"conv": 8, "k": 3, "pad": 1, "w": "INT4", "act": "UINT2"},  # 9x9x8
        {"conv": 0, "k": 3, "stride": 2, "depthwise": True, "w": "TERNARY", "act": "BIPOLAR"},
        {"pool": 2},  # 4x4x8 -> 2x2x8
        {"conv": 16, "k": 1, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 10, "w": "BIPOLAR"}])
    c = cost.cost_model(model)
    q, f = c["quantized"]["layers"], c["float32"]["layers"]
    assert [r["macs"] for r in q] == [81 * 8 * 27, 16 * 8 * 9, 0, 4 * 16 * 8, 64 * 10]
    assert [r["macs"] for r in f] == [r["macs"] for r in q]
    assert [r["datapath"] for r in q] == ["int-mac", "add-sub", "max", "xnor-popcount",
                                         "xnor-popcount"]
    assert [r["weight_bytes"] for r in q] == [8 * 27 * 4 / 8, 8 * 9 * 2 / 8, 0, 16 * 8 / 8,
                                              64 * 10 / 8]
    pool = q[2]
    assert pool["compute_pj"] == pytest.approx(2 * 2 * 8 * 3 * cost.int_add_pj(1))
    xnor = q[3]  # a 1x1 conv over 8 BIPOLAR channels: 4 positions x 16 outputs
    tree = sum(a * cost.int_add_pj(w) for a, w in cost.popcount_tree(8))
    per_output = 8 * cost.int_add_pj(1) + tree + cost.int_add_pj(4)  # XNORs, tree, compare
    assert xnor["compute_pj"] == pytest.approx(64 * per_output)
    assert xnor["aux_bytes"] == 16 * 1 * 4 / 8  # one 4-bit threshold per channel
