"""Brevitas' BNN-PYNQ CNV-w1a1 and CNV-w2a2 (random weights) through the hardware backends as a
user runs them: `qflow compile --folding-preset` at finn-examples' folding, then `qflow sim`
(every sample equal to golden; the measured initiation interval and latency equal to the
generator's prediction), `qflow run --backend rtl` and `qflow run --backend hls` (the C
simulation on qflow's fallback types and on Xilinx's ap_int.h / hls_stream.h), every sample
equal to the golden model. Whole networks: slow (see each test for its wall time)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends.hls import vendor
from flow.cli import main
from flow.ir import load
from tests.conftest import export_bnn_pynq
from tests.helpers.models import inputs

CNV = ["cnv-w1a1", "cnv-w2a2"]
CNV_INPUT = (3, 32, 32)
# cycles per frame by FINN's arithmetic at the presets (test_lower_cnn's preset tests): the
# 512 x 256 and 512 x 512 dense layers for w1a1; for w2a2 the fourth convolution,
# 10 x 10 pixels x 1152/16 x 128/8
INTERVAL = {"cnv-w1a1": 32768, "cnv-w2a2": 115200}


@pytest.fixture(scope="module")
def cnv_build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The build folder of `qflow compile` on the exported network at its preset, once per
    network and test worker."""
    builds: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in builds:
            folder = tmp_path_factory.mktemp(name)
            onnx = export_bnn_pynq(name, folder, seed=4)
            out = folder / "build"
            assert main(["compile", str(onnx), "--out", str(out),
                         "--folding-preset", name]) == 0
            builds[name] = out
        return builds[name]

    return build


def qflow_run(build: Path, backend: str, x: np.ndarray, folder: Path) -> np.ndarray:
    """`qflow run --backend <backend>` on float images x -> its outputs [N, classes]."""
    np.save(folder / "x.npy", x)
    assert main(["run", str(build), "--backend", backend, "--inputs", str(folder / "x.npy"),
                 "--outputs", str(folder / "y.npy")]) == 0
    return np.load(folder / "y.npy").reshape(len(x), -1)


def golden_outputs(build: Path, x: np.ndarray) -> np.ndarray:
    return golden.run(load(build), x).reshape(len(x), -1)


@pytest.mark.slow
@pytest.mark.parametrize("name", CNV)
def test_cnv_rtl(name: str, cnv_build: Callable[[str], Path], tmp_path: Path) -> None:
    """`qflow sim` and `qflow run --backend rtl` equal golden; the measured interval is
    FINN's and the latency the generator's prediction. CNV-w2a2 on 2 cores under load:
    export + compile 26 s, Verilator build 61 s, 3 frames simulated in 10 s (115,200 cycles
    a frame at ~100k cycles/s)."""
    build = cnv_build(name)
    x = inputs(CNV_INPUT, 3)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(build), "--inputs", str(tmp_path / "x.npy")]) == 0
    r = json.loads((build / "sim.subset.json").read_text())  # --inputs: apart from sim.json
    assert r["all_equal"] and r["samples"] == 3
    assert r["initiation_interval_cycles"] == r["expected_initiation_interval"] == INTERVAL[name]
    assert r["latency_cycles"] == r["expected_latency"]
    np.testing.assert_array_equal(qflow_run(build, "rtl", x[:2], tmp_path),
                                  golden_outputs(build, x[:2]))


@pytest.mark.slow
@pytest.mark.parametrize("types", ["fallback", "vendor"])
@pytest.mark.parametrize("name", CNV)
def test_cnv_hls(name: str, types: str, cnv_build: Callable[[str], Path], tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`qflow run --backend hls` equals golden on 20 images, on the fallback types and on
    Xilinx's headers (named explicitly: a missing folder is an error, not a quiet
    fallback). On 2 cores under load, g++ on the fallback types: CNV-w1a1 ~28 s, CNV-w2a2
    ~39 s; on Xilinx's ~100 s each (13 min for CNV-w1a1 before weight tables became plain
    integers there: qflow::table_word_t)."""
    if types == "vendor":
        include = vendor.installed()
        if include is None:
            pytest.skip(f"Xilinx's ap_int.h / hls_stream.h are not installed ({vendor.AP_TYPES})")
        monkeypatch.setenv(vendor.ENV, str(include))
    else:
        monkeypatch.setenv(vendor.ENV, "fallback")
    build = cnv_build(name)
    x = inputs(CNV_INPUT, 20)
    np.testing.assert_array_equal(qflow_run(build, "hls", x, tmp_path), golden_outputs(build, x))
