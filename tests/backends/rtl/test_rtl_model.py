"""Generated model tops against the golden model, under Verilator + cocotb: synthetic
models of several datatypes and foldings (width converters of every kind), every model
free-running (the measured initiation interval and latency against the folding arithmetic)
and under random input and output stalls; `qflow sim`'s report; a stale rtl/ regenerated;
the input contract."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import backends, golden
from flow.backends import rtl
from flow.buildfolder import mark
from flow.inputs import InputError
from flow.ir import LAYER_KINDS, DenseLayer, Folding, IRError, MaxPoolLayer, Model
from flow.ir.requant import ROUNDINGS
from flow.synthetic import random_cnn_model, random_codes, random_model, requantize_hidden
from tests.helpers.rtl import MIXED, check_cnn, check_stalled, cnn, tfc_like


def check(model: Model, codes: np.ndarray, build_dir: Path) -> dict[str, Any]:
    """Free-running: every output equals golden, the initiation interval and the latency
    are what the folding predicts; then the same codes under stalls."""
    outputs, details = rtl.simulate(model, build_dir, codes)
    np.testing.assert_array_equal(outputs["rtl"], golden.run_codes(model, codes))
    assert details["initiation_interval_cycles"] == model.initiation_interval
    assert details["latency_cycles"] == details["expected_latency"]
    check_stalled(model, codes, build_dir)
    return details


def test_tfc_like(tmp_path: Path) -> None:
    model = tfc_like()
    r = check(model, random_codes(model, 120), tmp_path)
    assert r["initiation_interval_cycles"] == 64


@pytest.mark.parametrize("name", MIXED)
def test_mixed_models(name: str, tmp_path: Path) -> None:
    widths, wts, acts, in_t, folding = MIXED[name]
    model = random_model(widths, wts, acts, in_t, folding, seed=3, name=name)
    codes = random_codes(model, 60)
    check(model, codes, tmp_path)
    assert np.array_equal(rtl.run(model, tmp_path, codes[:5]), golden.run_codes(model, codes[:5]))


def test_manifest_and_top_lint(tmp_path: Path) -> None:
    widths, wts, acts, in_t, folding = MIXED["int_mix"]
    model = random_model(widths, wts, acts, in_t, folding, seed=3, name="int_mix")
    folder = rtl.generate(model, tmp_path)
    man = json.loads((folder / "manifest.json").read_text())
    assert set(man) == {"top", "sources", "ecp5_sources", "mem_files", "files", "layers",
                        "fifos", "expected"}
    # rtl/ is self-contained: every file named relative to it, the blocks copied in
    assert man["top"] == "int_mix_top" and man["sources"][-1] == "int_mix_top.sv"
    listed = man["sources"] + man["ecp5_sources"] + man["mem_files"]
    assert all(not Path(p).is_absolute() and (folder / p).is_file() for p in listed)
    assert sorted(man["files"]) == sorted(listed)
    assert [(la["pe"], la["simd"], la["cycles"]) for la in man["layers"]] == \
        [(pe, simd, layer.cycles) for (pe, simd), layer in zip(folding, model.layers, strict=True)]
    assert man["expected"]["initiation_interval"] == model.initiation_interval
    assert [(f["instance"], f["after"], f["depth"]) for f in man["fifos"]] == [
        ("l0_fifo", model.layers[0].name, 2), ("l1_fifo", model.layers[1].name, 2)]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) \
        == sorted([*listed, "manifest.json", "fingerprint.json"])
    assert rtl.up_to_date(model, tmp_path)
    rtl.verilator_env()
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", man["top"],
                           *man["sources"]], capture_output=True, text=True, env=os.environ,
                          cwd=folder)
    assert lint.returncode == 0, lint.stderr


def test_tfc_w1a1(tfc_w1a1: tuple[Model, np.ndarray], tmp_path: Path) -> None:
    model, codes = tfc_w1a1
    assert len(codes) >= 200
    r = check(model, codes, tmp_path)
    assert r["initiation_interval_cycles"] == 64


def test_digits_default(digits_default: tuple[Model, np.ndarray], tmp_path: Path) -> None:
    """Through `qflow sim` (the IR alone in the folder: rtl/ generated, the test split
    simulated, sim.json written), then under stalls."""
    model, codes = digits_default
    assert len(codes) >= 200
    model.save(tmp_path)
    mark(tmp_path)
    r = rtl.check(tmp_path)
    assert r["all_equal"] and r["samples"] == len(codes)
    assert r["agreement"] == {"rtl": {"equal": len(codes), "differing_samples": []}}
    assert r["initiation_interval_cycles"] == r["expected_initiation_interval"] == \
        model.initiation_interval
    assert r["latency_cycles"] == r["expected_latency"]
    assert json.loads((tmp_path / "sim.json").read_text()) == r
    check_stalled(model, codes, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_random_foldings(seed: int, tmp_path: Path) -> None:
    """Random widths, datatypes and foldings (any PE/SIMD mix)."""
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.choice([6, 8, 12, 16, 24], size=4)]
    types = ["BIPOLAR", "TERNARY", "INT3", "UINT2", "INT5"]
    wts = [str(rng.choice(types[:3])) for _ in range(3)]
    acts = [str(rng.choice(types)) for _ in range(2)]
    in_t = str(rng.choice(["UINT8", "INT4", "BIPOLAR"]))

    def div(n: int) -> int:
        return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))

    folding = [(div(widths[i + 1]), div(widths[i])) for i in range(3)]
    model = random_model(widths, wts, acts, in_t, folding, seed=seed, name=f"rand{seed}")
    check(model, random_codes(model, 40, seed=seed), tmp_path)


def test_stale_rtl_regenerated(tmp_path: Path) -> None:
    """#10: an rtl/ generated from other weights (same name and shapes) is regenerated before
    it runs, not simulated in place of the model asked for."""
    widths, wts, acts, in_t, folding = MIXED["int_mix"]
    old = random_model(widths, wts, acts, in_t, folding, seed=3, name="int_mix")
    new = random_model(widths, wts, acts, in_t, folding, seed=4, name="int_mix")
    codes = random_codes(new, 8)
    want = golden.run_codes(new, codes)
    assert not np.array_equal(golden.run_codes(old, codes), want)
    rtl.generate(old, tmp_path)
    np.testing.assert_array_equal(backends.run("rtl", new, tmp_path, codes), want)  # qflow run
    assert rtl.up_to_date(new, tmp_path)
    rtl.generate(old, tmp_path)
    outputs, _ = rtl.simulate(new, tmp_path, codes)
    np.testing.assert_array_equal(outputs["rtl"], want)


def test_bipolar_input_zero_rejected(tmp_path: Path) -> None:
    """A BIPOLAR input code is -1 or +1: a 0 is an InputError, not silently -1."""
    model = random_model([8, 4], ["BIPOLAR"], [], "BIPOLAR", [(2, 4)], name="bipolar_in")
    codes = random_codes(model, 3)
    codes[1, 2] = 0
    for call in (rtl.run, rtl.simulate, rtl.simulate_codes):
        with pytest.raises(InputError, match="sample 1, feature 2: code 0 is not a BIPOLAR"):
            call(model, tmp_path, codes)
    assert not (tmp_path / "rtl").exists()  # rejected before anything is generated


def test_unknown_layer_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LAYER_KINDS, "lstm", DenseLayer)  # a kind the IR knows, rtl does not
    model = random_model([8, 4], ["INT2"], [], "UINT2", [(2, 4)], name="lstm_like")
    model.layers[0].kind = "lstm"
    with pytest.raises(IRError, match=r"layer dense0 .*'lstm' is not supported by the rtl"):
        rtl.generate(model, tmp_path)


def test_cnv_like(tmp_path: Path) -> None:
    model = cnn("cnv_like")
    r = check_cnn(model, random_codes(model, 12), tmp_path)
    assert r["expected_initiation_interval"] == model.initiation_interval


@pytest.mark.slow
def test_int_cnn(tmp_path: Path) -> None:
    model = cnn("int_cnn")
    check_cnn(model, random_codes(model, 12), tmp_path)
    # the overlapping, padded pool reads 9 taps a window, more than its input beats: the
    # IR's cycles count the window beats (check_cnn: the measured interval is the IR's)
    pool = model.layers[2]
    assert isinstance(pool, MaxPoolLayer)
    assert pool.cycles == 3 * 3 * 9 * 4 // 2 > 5 * 5 * 4 // 2


def random_cnn_spec(rng: np.random.Generator) -> tuple[tuple[int, int, int], str,
                                                       list[dict[str, Any]]]:
    """A random small CNN: 2-3 conv / pool layers of random kernel, stride, padding and
    types on a random odd-or-even frame, then a dense layer."""
    types = ["BIPOLAR", "TERNARY", "INT3", "UINT2", "INT4"]
    c, h = int(rng.integers(1, 4)), int(rng.integers(4, 9))
    w = h + int(rng.integers(-1, 2))
    shape = (c, h, w)
    in_t = str(rng.choice(["UINT8", "INT4", "BIPOLAR"]))
    layers: list[dict[str, Any]] = []
    for i in range(int(rng.integers(2, 4))):
        k = int(rng.choice([1, 3, 5] if min(h, w) >= 5 else [1, 2, 3]))
        k = min(k, h, w) if i else k
        s = int(rng.choice([1, 2]))
        p = int(rng.integers(0, min(k - 1, 2) + 1))
        if k > min(h, w) + 2 * p:
            k, p = 1, 0
        if i and rng.random() < 0.35:
            layers.append({"pool": k, "stride": s, "pad": p})
        elif i and rng.random() < 0.3:
            layers.append({"conv": 0, "k": k, "stride": s, "pad": p, "depthwise": True,
                           "w": str(rng.choice(types[:3])), "act": str(rng.choice(types))})
        else:
            layers.append({"conv": int(rng.integers(2, 7)), "k": k, "stride": s, "pad": p,
                           "w": str(rng.choice(types[:3])), "act": str(rng.choice(types))})
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    layers.append({"dense": int(rng.integers(2, 6)), "w": str(rng.choice(types[:3]))})
    return shape, in_t, layers


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_cnns(seed: int, tmp_path: Path) -> None:
    """Random CNN IR models (kernels 1-5, strides 1-2, padding 0-2, every datatype mix) with
    random foldings, free-running and under stalls, equal to golden."""
    rng = np.random.default_rng(100 + seed)
    shape, in_t, layers = random_cnn_spec(rng)
    model = random_cnn_model(shape, in_t, layers, seed=seed, name=f"rand_cnn{seed}")

    def div(n: int) -> int:
        return int(rng.choice([d for d in range(1, n + 1) if n % d == 0]))

    for layer in model.layers:
        layer.folding = Folding(div(layer.pe_dim), div(layer.simd_dim))
    model.validate(model.name)
    check_cnn(model, random_codes(model, 8, seed=seed), tmp_path)


def test_wide_pads_cnn(tmp_path: Path) -> None:
    """Windows of padding only: the swu's row bookkeeping skips rows of padding, free-running
    at the expected interval and latency, and under stalls."""
    model = cnn("wide_pads_cnn")
    check_cnn(model, random_codes(model, 8), tmp_path)


def test_depthwise_cnn(tmp_path: Path) -> None:
    """A MobileNet-style block in vvau stages: a depthwise conv on BIPOLAR codes (2-bit taps
    into the MAC lanes) and a strided multi-bit one, each before a 1x1 conv."""
    model = cnn("depthwise_cnn")
    check_cnn(model, random_codes(model, 10), tmp_path)


def test_expected_latency_of_a_slow_consumer(tmp_path: Path) -> None:
    """The window unit's cycle model follows an MVAU that takes far longer per window than
    the window's beats (CNV-w1a1's first layer at a 65,536-cycle target: 72 cycles a
    window for 9 beats) instead of giving up as if stuck."""
    from flow.ir import Folding
    from flow.synthetic import random_cnn_model

    model = random_cnn_model((3, 16, 16), "UINT8", [
        {"conv": 64, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 10, "w": "BIPOLAR"}], seed=1)
    model.layers[0].folding = Folding(pe=8, simd=3)
    model.layers[1].folding = Folding(pe=10, simd=64)
    model.validate("test")
    rtl.generate(model, tmp_path)
    man = json.loads((tmp_path / "rtl" / "manifest.json").read_text())
    assert man["expected"]["latency"] > 14 * 14 * 72


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_requantized_cnn(rounding: str, tmp_path: Path) -> None:
    """8-bit layers requantized (rtl/requant.sv) in either rounding: a padded convolution, a
    pool, a second convolution onto UINT4 and a dense layer onto INT8, then the last layer;
    every sample equal to golden, free-running and stalled, at the folding's interval and
    latency."""
    model = random_cnn_model((2, 6, 6), "INT8", [
        {"conv": 6, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"},
        {"pool": 2},
        {"conv": 4, "k": 2, "w": "INT4", "act": "UINT4"},
        {"dense": 6, "w": "INT8", "act": "INT8"},
        {"dense": 3, "w": "INT8"},
    ], seed=4, name="requant_cnn")
    for layer, (pe, simd) in zip(model.layers, [(3, 2), (2, 1), (2, 3), (3, 4), (1, 6)],
                                 strict=True):
        layer.folding = Folding(pe, simd)
    requantize_hidden(model, seed=4, rounding=rounding)
    assert [backends.unsupported(b, model) for b in ("rtl", "golden")] == [[], []]
    check_cnn(model, random_codes(model, 16), tmp_path)
