"""The generated top as a pipeline: the FIFO depths between its stages
(flow.backends.rtl.top.fifo_depths) sized from the stages' cycle models, confirmed in
simulation (the interval met with them, missed with a FIFO cut below them), refused when
given undersized; CNNs under random input and output stalls equal golden, nothing lost,
duplicated or reordered. Brevitas' CNV networks through `qflow sim`: test_cnv_hardware."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import rtl
from flow.backends.rtl import top
from flow.fingerprint import file_digest
from flow.ir import Folding, Model
from flow.synthetic import random_cnn_model, random_codes, random_model
from tests.helpers.rtl import MIXED, cnn, tfc_like


def dense_bound() -> Model:
    """A conv feeding a slower dense layer (256 cycles a frame against the conv's 144): the
    dense layer's first pass wants a frame's 64 beats at once while the conv spreads them
    over its frame, so the FIFO between them must hold a good part of a frame."""
    model = random_cnn_model((2, 6, 6), "UINT4", [
        {"conv": 8, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"dense": 4, "w": "BIPOLAR"}], seed=1, name="dense_bound")
    model.layers[0].folding = Folding(pe=8, simd=2)
    model.layers[1].folding = Folding(pe=1, simd=2)
    model.validate(model.name)
    return model


def fc_bound() -> Model:
    """As CNV-w1a1's first two fully connected layers: a PE 1 layer, one pass a cycle (its
    output FIFO all in flight), feeding a slower one (256 cycles a frame against 32) whose
    first pass wants the frame's 8 beats at once: the FIFO between them holds most of them."""
    return random_model([16, 32, 32, 4], ["BIPOLAR"] * 3, ["BIPOLAR"] * 2, "BIPOLAR",
                        [(1, 16), (1, 4), (4, 32)], seed=1, name="fc_bound")


def models() -> list[Model]:
    return [fc_bound(), dense_bound(), cnn("cnv_like"), cnn("int_cnn"), tfc_like(),
            *(random_model(*MIXED[k], seed=3, name=k) for k in MIXED)]


def test_sizing_schedule_has_converged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sizing schedule's frames suffice: twice as many give the same depths."""
    depths = [top.fifo_depths(m) for m in models()]
    monkeypatch.setattr(top, "SIZING_FRAMES", 2 * top.SIZING_FRAMES)
    assert [top.fifo_depths(m) for m in models()] == depths
    # fc_bound: 6 of the slow layer's 8 input beats; dense_bound: the conv's own output
    # FIFO (8 windows, 32 beats) holds all but 4 of the 36 waiting
    assert depths[:2] == [[6, 2], [4]]


def test_undersized_fifo_refused(tmp_path: Path) -> None:
    model = fc_bound()
    with pytest.raises(ValueError, match=r"fc_bound: FIFO l0_fifo \(dense0 -> dense1\) of 5 "
                                         r"beats is undersized: the schedule at 256 cycles a "
                                         r"frame holds 6 beats there"):
        rtl.generate(model, tmp_path, fifo_depths=[5, 2])
    rtl.generate(model, tmp_path, fifo_depths=[9, 2])  # more than needed is allowed
    assert "axis_fifo #(.WIDTH(4), .DEPTH(9)) l0_fifo" in (tmp_path / "rtl" /
                                                           "fc_bound_top.sv").read_text()


def test_sized_fifo_confirmed_in_simulation(tmp_path: Path) -> None:
    """With the sized FIFO the top runs at the slowest stage's interval; one beat less and
    the same top (outputs still equal golden) falls short of it: the sizing is tight."""
    model = fc_bound()
    codes = random_codes(model, 10)
    want = golden.run_codes(model, codes)
    rtl.generate(model, tmp_path)
    outputs, r = rtl.simulate(model, tmp_path, codes)
    np.testing.assert_array_equal(outputs["rtl"], want)
    assert r["initiation_interval_cycles"] == r["expected_initiation_interval"] == 256
    assert r["latency_cycles"] == r["expected_latency"]
    # the same generated folder (its stamp still current) with the FIFO cut by one beat,
    # the edit recorded in the manifest as generated, so that qflow takes it
    path = tmp_path / "rtl" / "fc_bound_top.sv"
    text, n = re.subn(r"\.DEPTH\(6\)\) l0_fifo", ".DEPTH(5)) l0_fifo", path.read_text())
    assert n == 1
    path.write_text(text)
    manifest = tmp_path / "rtl" / "manifest.json"
    man = json.loads(manifest.read_text())
    man["files"][path.name] = file_digest(path)
    manifest.write_text(json.dumps(man))
    outputs, r = rtl.simulate(model, tmp_path, codes)
    np.testing.assert_array_equal(outputs["rtl"], want)
    assert r["initiation_interval_cycles"] > 256


# (input tvalid, output tready) probabilities a cycle: both stalling, starved, blocked
STALL_PATTERNS = [(0.5, 0.3), (0.2, 1.0), (1.0, 0.1)]
STALL_CASES = [pytest.param(name, k, marks=[pytest.mark.slow] if (name, k) != ("dense_bound", 0)
                            else []) for name in ("dense_bound", "cnv_like")
               for k in range(len(STALL_PATTERNS))]


@pytest.mark.parametrize("name, pattern", STALL_CASES)
def test_cnn_under_random_stalls(name: str, pattern: int, tmp_path: Path) -> None:
    """Random input tvalid and output tready: every frame equals golden (simulate_codes
    raises on a misplaced tlast, a beat too many, or a run beyond its cycle budget)."""
    model = dense_bound() if name == "dense_bound" else cnn(name)
    codes = random_codes(model, 6, seed=7)
    valid, ready = STALL_PATTERNS[pattern]
    acc, _ = rtl.simulate_codes(model, tmp_path, codes, valid, ready, seed=11 + pattern)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))
