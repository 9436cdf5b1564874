"""Whole models through the HLS backend: generated top + C simulation == golden, exactly."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from flow import backends, golden, synthetic
from flow.backends import hls
from flow.backends.check import agreement
from flow.backends.hls import vendor
from flow.buildfolder import mark
from flow.fingerprint import is_current
from flow.inputs import InputError
from flow.ir import Model, Requant
from tests.helpers.backends import random_folding
from tests.helpers.hls import CNNS

# (widths, weight types, activation types, input type, folding (PE, SIMD) per layer)
MODELS = {
    "w1a1": ([64, 32, 32, 10], ["BIPOLAR"] * 3, ["BIPOLAR"] * 2, "BIPOLAR",
             [(8, 16), (4, 8), (10, 4)]),
    "w2a2_u8in": ([49, 28, 14, 7], ["TERNARY", "INT2", "INT2"], ["UINT2", "INT2"], "UINT8",
                  [(4, 7), (7, 4), (7, 2)]),
    "mixed": ([36, 24, 18, 6], ["INT4", "BIPOLAR", "UINT3"], ["BIPOLAR", "UINT4"], "INT6",
              [(3, 4), (6, 6), (2, 9)]),
    "unfolded": ([20, 12, 5], ["INT8", "INT8"], ["INT8"], "UINT8", [(12, 20), (5, 12)]),
    "serial": ([12, 6, 4], ["INT3", "TERNARY"], ["UINT3"], "INT4", [(1, 1), (1, 1)]),
    # BIPOLAR activations into multi-bit weights (the add-sub datapath): the model input
    # into INT8 / INT4 / UINT8 weights, hidden BIPOLAR into INT8 / INT4 / INT2 / TERNARY,
    # and XNOR -> INT2 -> XNOR
    "bipolar_in_int8": ([40, 20, 5], ["INT8", "INT8"], ["BIPOLAR"], "BIPOLAR",
                        [(4, 8), (5, 4)]),
    "bipolar_in_int4": ([40, 20, 5], ["INT4", "INT4"], ["BIPOLAR"], "BIPOLAR",
                        [(2, 5), (1, 20)]),
    "bipolar_in_uint8": ([33, 17, 4], ["UINT8", "TERNARY"], ["BIPOLAR"], "BIPOLAR",
                         [(17, 3), (2, 17)]),
    "bipolar_chain": ([64, 32, 20, 5], ["BIPOLAR", "INT2", "BIPOLAR"], ["BIPOLAR", "BIPOLAR"],
                      "BIPOLAR", [(8, 16), (4, 8), (5, 4)]),
    "bipolar_hidden_int2": ([40, 20, 5], ["INT8", "INT2"], ["BIPOLAR"], "INT8",
                            [(20, 40), (1, 10)]),
}


def assert_equal_golden(model: Model, build_dir: Path, codes: np.ndarray, **options: object) -> None:
    out = hls.run(model, build_dir, codes, **options)
    ref = golden.run_codes(model, codes)
    bad = np.flatnonzero(np.any(out != ref, axis=1))
    assert not len(bad), f"{len(bad)} of {len(codes)} samples differ, first {bad[:10].tolist()}"


@pytest.mark.parametrize("name", list(MODELS))
def test_random_model_equals_golden(tmp_path: Path, name: str) -> None:
    model = synthetic.random_model(*MODELS[name], seed=11, name=name)
    codes = synthetic.random_codes(model, 200)
    # through the backend registry, as `qflow run` and `qflow verify` call it
    assert np.array_equal(backends.run("hls", model, tmp_path, codes),
                          golden.run_codes(model, codes))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24))
def test_random_model_sweep(tmp_path: Path, seed: int) -> None:
    """Random depths, widths, datatypes and foldings."""
    rng = np.random.default_rng(seed)
    types = ["BIPOLAR", "TERNARY", "INT2", "INT3", "UINT2", "UINT4", "INT8"]
    widths = [int(w) for w in rng.integers(2, 70, size=int(rng.integers(2, 5)))]
    n = len(widths) - 1
    folding = []
    for i in range(n):
        pes = [d for d in range(1, widths[i + 1] + 1) if widths[i + 1] % d == 0]
        simds = [d for d in range(1, widths[i] + 1) if widths[i] % d == 0]
        folding.append((int(rng.choice(pes)), int(rng.choice(simds))))
    model = synthetic.random_model(
        widths, [str(rng.choice(types)) for _ in range(n)],
        [str(rng.choice(types)) for _ in range(n - 1)], str(rng.choice(types)), folding, seed)
    assert_equal_golden(model, tmp_path, synthetic.random_codes(model, 300, seed))


@pytest.mark.parametrize("name", ["mixed", "bipolar_chain"])
def test_sanitizers(tmp_path: Path, name: str) -> None:
    model = synthetic.random_model(*MODELS[name], seed=4, name=name)
    assert_equal_golden(model, tmp_path, synthetic.random_codes(model, 100), sanitize=True)


def test_generated_folder_is_complete(tmp_path: Path) -> None:
    model = synthetic.random_model(*MODELS["w2a2_u8in"], seed=1, name="my-net")
    out = hls.generate(model, tmp_path, part="xcu50-fsvh2104-2-e", clock_ns=4)
    assert out == tmp_path / "hls"
    names = {p.name for p in out.iterdir()}
    templates = {p.name for p in hls.headers()}
    assert templates | {"my_net_top.cpp", "my_net_top.hpp", "my_net_tb.cpp", "run_hls.tcl",
                        "layer0_params.hpp", "layer1_params.hpp", "layer2_params.hpp",
                        "tb_input.bin", "tb_expected.bin", "fingerprint.json"} <= names
    tcl = (out / "run_hls.tcl").read_text()
    for line in ("set_top my_net_top", 'add_files $here/my_net_top.cpp -cflags "-std=c++14 -I$here"',
                 "add_files -tb $here/my_net_tb.cpp", "set_part {xcu50-fsvh2104-2-e}",
                 "create_clock -period 4 ", "csim_design -argv", "csynth_design",
                 "export_design -format ip_catalog"):
        assert line in tcl
    top = (out / "my_net_top.cpp").read_text()
    for pragma in ("INTERFACE axis port=in0", "INTERFACE axis port=out0", "DATAFLOW",
                   "ARRAY_PARTITION variable=layer0_weights complete dim=1",
                   "ARRAY_PARTITION variable=layer1_act.t complete dim=3"):
        assert f"QFLOW_HLS({pragma})" in top
    # PE 4 feeds SIMD 4 directly; PE 7 -> SIMD 2 needs a width converter before layer2
    assert top.count("qflow::dwc<") == 1 and "qflow::dwc<7, 2, qflow::int_t<2>::bits, 14>" in top
    assert "PIPELINE II=1" in (out / "qflow_mvau.hpp").read_text()


def test_wide_words_raise_the_vendor_width_limit(tmp_path: Path) -> None:
    """SIMD 512 x UINT4 = 2048-bit input words: past ap_uint's default 1024, within 4096."""
    model = synthetic.random_model([512, 8, 4], ["INT2", "INT2"], ["UINT2"], "UINT4",
                                   [(8, 512), (4, 8)], seed=8, name="wide")
    assert_equal_golden(model, tmp_path, synthetic.random_codes(model, 20))
    assert "#define AP_INT_MAX_W 2048\n" in (tmp_path / "hls" / "wide_top.hpp").read_text()
    too_wide = synthetic.random_model([1100, 4], ["INT4"], [], "UINT4", [(1, 1100)], name="w")
    with pytest.raises(ValueError, match="at most 4096"):
        hls.generate(too_wide, tmp_path / "too_wide")


def test_too_wide_word_names_the_layer_and_file(tmp_path: Path) -> None:
    """The error names the layer, the word, its width and the generated file it is in."""
    second = synthetic.random_model([16, 1100, 4], ["INT2", "INT4"], ["UINT4"], "UINT2",
                                    [(1, 16), (1, 1100)], name="w")
    with pytest.raises(ValueError, match=r"layer 1 \(dense1, from synthetic1\): input stream "
                                         r"word \(SIMD 1100 x UINT4\) of 4400 bits in w_top.cpp"):
        hls.generate(second, tmp_path / "second")
    weights = synthetic.random_model([1100, 4], ["INT8"], [], "UINT2", [(1, 1100)], name="w")
    with pytest.raises(ValueError, match=r"layer 0 \(dense0, from synthetic0\): weight word "
                                         r"layer0_weights \(SIMD 1100 x INT8\) of 8800 bits "
                                         r"in layer0_params.hpp"):
        hls.generate(weights, tmp_path / "weights")
    assert not (tmp_path / "second" / "hls").exists()  # nothing half-written


def test_testbench_checks_itself(tmp_path: Path) -> None:
    """The csim run_hls.tcl starts compares with golden outputs written beside it."""
    model = synthetic.random_model(*MODELS["serial"], seed=2, name="serial")
    exe, _ = hls.build(model, tmp_path, hls.cxx_flags())
    folder = tmp_path / "hls"
    args = [str(exe), str(folder / "tb_input.bin"), str(tmp_path / "o.bin")]
    r = subprocess.run([*args, str(folder / "tb_expected.bin")], capture_output=True, text=True)
    assert r.returncode == 0 and " 0 of " in r.stdout, r.stdout + r.stderr
    wrong = np.fromfile(folder / "tb_expected.bin", dtype="<i8")
    wrong[5] += 1
    wrong.tofile(tmp_path / "wrong.bin")
    r = subprocess.run([*args, str(tmp_path / "wrong.bin")], capture_output=True, text=True)
    assert r.returncode == 1 and " 1 of " in r.stdout


def test_regenerates_when_the_model_changes(tmp_path: Path) -> None:
    model = synthetic.random_model(*MODELS["serial"], seed=3, name="serial")
    codes = synthetic.random_codes(model, 50)
    hls.generate(model, tmp_path, part="xcu50-fsvh2104-2-e", clock_ns=4)
    assert_equal_golden(model, tmp_path, codes)
    layer = model.layers[-1]
    changed = dataclasses.replace(model, layers=[
        model.layers[0], dataclasses.replace(layer, weights=-layer.weights)])
    assert_equal_golden(changed, tmp_path, codes)
    folder = tmp_path / "hls"
    assert is_current(folder, changed, hls.template_sources())
    # the regenerated folder keeps the target run_hls.tcl was written for
    tcl = (folder / "run_hls.tcl").read_text()
    assert "set_part {xcu50-fsvh2104-2-e}" in tcl and "create_clock -period 4 " in tcl
    # the binary of this C++ and these flags is cached; the model's first one was replaced
    assert hls.build(changed, tmp_path, hls.cxx_flags())[1] == 0.0
    assert hls.build(model, tmp_path, hls.cxx_flags())[1] > 0


def test_rejects_codes_outside_the_input_type(tmp_path: Path) -> None:
    model = synthetic.random_model(*MODELS["w1a1"], seed=0)
    codes = synthetic.random_codes(model, 4)
    codes[2, 3] = 0  # BIPOLAR has no 0
    for run in (hls.run, lambda *a: backends.run("hls", *a)):
        with pytest.raises(InputError, match="sample 2, feature 3: code 0 is not a BIPOLAR value"):
            run(model, tmp_path, codes)
    assert not (tmp_path / "hls").exists()  # refused before anything is generated


def test_cli_writes_report(tmp_path: Path) -> None:
    model = synthetic.random_model(*MODELS["mixed"], seed=6, name="mixed")
    model.save(tmp_path)
    mark(tmp_path)
    codes = synthetic.random_codes(model, 30)
    # the synthetic input stage is the identity: float inputs are the codes
    np.save(tmp_path / "x.npy", codes.astype(np.float32))
    p = argparse.ArgumentParser()
    hls.register_cli(p.add_subparsers(dest="command"))
    a = p.parse_args(["hls", str(tmp_path), "--inputs", str(tmp_path / "x.npy"), "--limit", "20",
                      "--fallback-types"])
    a.func(a)
    r = json.loads((tmp_path / "hls.subset.json").read_text())  # --inputs, --limit
    assert r["types"] == "fallback"
    assert (r["samples"], r["agreement"]["hls"]["equal"], r["all_equal"]) == (20, 20, True)
    assert r["compile_seconds"] > 0 and r["run_seconds"] >= 0
    assert [lay["pe"] for lay in r["layers"]] == [3, 6, 2]


@pytest.mark.parametrize("name", ["mixed", "padded_mixed"])
def test_vendor_types_equal_golden(tmp_path: Path, name: str) -> None:
    """The same sources on Xilinx's own ap_int / hls::stream (what csim in Vitis runs): a
    dense model and a CNN (window generators, MVAUs, a streaming pool)."""
    include = vendor.installed()
    if include is None:
        pytest.skip("Xilinx's ap_int.h / hls_stream.h are not installed: scripts/setup.sh "
                    f"extracts them to {vendor.AP_TYPES} (or set XILINX_HLS)")
    if name in MODELS:
        model = synthetic.random_model(*MODELS[name], seed=12, name=name)
    else:
        model = random_folding(synthetic.random_cnn_model(*CNNS[name], seed=12, name=name),
                               np.random.default_rng(12))
    codes = synthetic.random_codes(model, 100)
    outputs, details = hls.run_timed(model, tmp_path, codes, vendor_include=include)
    agree = agreement(outputs, golden.run_codes(model, codes))
    assert details["types"] == f"vendor ({include})" and agree["hls"]["equal"] == len(codes), \
        agree["hls"]["differing_samples"]


def test_types_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: Vitis' headers, else the venv's copy, else the fallback; a folder without the
    headers is refused by name; "fallback" always wins."""
    monkeypatch.setattr(vendor, "AP_TYPES", tmp_path / "absent")
    monkeypatch.delenv("XILINX_HLS", raising=False)
    assert vendor.resolve("auto") is None and vendor.resolve("fallback") is None
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: no ap_int.h / hls_stream.h"):
        vendor.resolve(tmp_path)
    for h in vendor.HEADERS:
        (tmp_path / h).write_text("")
    monkeypatch.setattr(vendor, "AP_TYPES", tmp_path)
    monkeypatch.setenv(vendor.ENV, "auto")
    assert vendor.resolve() == tmp_path == vendor.resolve(str(tmp_path))
    xilinx = tmp_path / "vitis"
    (xilinx / "include").mkdir(parents=True)
    for h in vendor.HEADERS:
        (xilinx / "include" / h).write_text("")
    monkeypatch.setenv("XILINX_HLS", str(xilinx))
    assert vendor.resolve() == xilinx / "include"
    monkeypatch.setenv(vendor.ENV, "fallback")
    assert vendor.resolve() is None


def test_extract_vendor_headers(tmp_path: Path) -> None:
    """The headers of a wheel's ap_types/ folder and its LICENSE, nothing else of it."""
    wheel = tmp_path / "hls4ml-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in ("ap_int.h", "hls_stream.h", "etc/ap_private.h"):
            z.writestr(vendor.WHEEL_FOLDER + name, f"// {name}\n")
        z.writestr("hls4ml/model/graph.py", "")
        z.writestr("hls4ml-0.0.dist-info/licenses/LICENSE", "Apache License 2.0\n")
    out = vendor.extract(wheel, tmp_path / "ap_types")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["LICENSE", "SOURCE", "ap_int.h", "etc/ap_private.h", "hls_stream.h"]
    assert (out / "LICENSE").read_text() == "Apache License 2.0\n"
    assert wheel.name in (out / "SOURCE").read_text()
    bare = tmp_path / "bare.whl"
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr(vendor.WHEEL_FOLDER + "ap_int.h", "")
    with pytest.raises(ValueError, match="no LICENSE"):
        vendor.extract(bare, tmp_path / "bare")
    assert not (tmp_path / "bare").exists()


@pytest.mark.parametrize("fixture", ["tfc_w1a1", "digits_default"])
def test_real_model_equals_golden(tmp_path: Path, request: pytest.FixtureRequest,
                                  fixture: str) -> None:
    """BNN-PYNQ's TFC-w1a1 at finn-examples' folding, and the default config trained here."""
    pytest.importorskip("flow.folding")  # the fixtures fold with it
    model, codes = request.getfixturevalue(fixture)
    outputs, _ = hls.run_timed(model, tmp_path, codes)
    agree = agreement(outputs, golden.run_codes(model, codes))["hls"]
    assert len(outputs["hls"]) == len(codes) and agree["equal"] == len(codes), \
        agree["differing_samples"]


REQUANTIZED = {
    # 8-bit: a padded convolution, a pool, a depthwise convolution (VVAU), a dense layer
    "cnn": lambda: random_folding(synthetic.random_cnn_model((2, 6, 6), "INT8", [
        {"conv": 6, "k": 3, "pad": 1, "w": "INT8", "act": "INT8"},
        {"pool": 2},
        {"conv": 6, "k": 3, "pad": 1, "w": "INT8", "act": "UINT4", "depthwise": True},
        {"dense": 8, "w": "INT8", "act": "INT8"},
        {"dense": 3, "w": "INT8"},
    ], seed=5, name="rq_cnn"), np.random.default_rng(5)),
    # XNOR popcounts mapped back to sums before the requantization
    "xnor": lambda: synthetic.random_model([24, 8, 3], ["BIPOLAR", "INT4"], ["UINT4"],
                                           "BIPOLAR", [(4, 6), (1, 8)], seed=5, name="rq_xnor"),
}


@pytest.mark.parametrize("rounding", ["half_even", "tflite"])
@pytest.mark.parametrize("types", ["fallback", pytest.param("vendor", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["cnn", pytest.param("xnor", marks=pytest.mark.slow)])
def test_requantized_models_equal_golden(tmp_path: Path, name: str, types: str,
                                         rounding: str) -> None:
    """Requantized layers (hls/qflow_requant.hpp) in MVAUs and a VVAU, in both roundings,
    on the fallback types and on Xilinx's: every sample equal to golden."""
    include = vendor.installed() if types == "vendor" else None
    if types == "vendor" and include is None:
        pytest.skip(f"Xilinx's ap_int.h / hls_stream.h are not installed ({vendor.AP_TYPES})")
    model = synthetic.requantize_hidden(REQUANTIZED[name](), seed=5, rounding=rounding)
    acts = [getattr(layer, "activation", None) for layer in model.layers]
    assert {a.rounding for a in acts if isinstance(a, Requant)} == {rounding}
    assert backends.unsupported("hls", model) == []
    codes = synthetic.random_codes(model, 60)
    outputs, details = hls.run_timed(model, tmp_path, codes, vendor_include=include)
    assert details["types"] == (f"vendor ({include})" if include else "fallback")
    agree = agreement(outputs, golden.run_codes(model, codes))
    assert agree["hls"]["equal"] == len(codes), agree["hls"]["differing_samples"]
