"""Whole generated models (flow.synthetic and the real fixtures) on the host with sanitizers
and on RV32IMC under QEMU, equal to flow.golden exactly; generation, budgets and the CLI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.buildfolder import mark
from flow.fingerprint import STAMP, is_current
from flow.inputs import InputError
from flow.ir import LAYER_KINDS, DenseLayer, IRError
from flow.synthetic import random_model
from tests.conftest import ROOT
from tests.helpers.firmware import HAVE_RV32, MODELS, model_and_codes, rv32

FAST_HOST = ["w1a1", "w8a8", "w2a2", "mixed", "bip_w4", "bip_chain"]
FAST_RV32 = ["w1a1_u8in", "w4a4", "mixed", "bip_w8", "bip_chain"]


@pytest.mark.parametrize("name", FAST_HOST)
def test_host_sanitized_equals_golden(tmp_path: Path, name: str) -> None:
    m, codes = model_and_codes(name)
    acc = fw.run(m, tmp_path, codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@rv32
@pytest.mark.parametrize("name", FAST_RV32)
def test_rv32_equals_golden(tmp_path: Path, name: str) -> None:
    m, codes = model_and_codes(name)
    acc = fw.run(m, tmp_path, codes, target="rv32")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_all_models_both_targets(tmp_path: Path, name: str, seed: int) -> None:
    m, codes = model_and_codes(name, n=64, seed=seed)
    ref = golden.run_codes(m, codes)
    np.testing.assert_array_equal(fw.run(m, tmp_path, codes, "host", sanitize=True), ref)
    if HAVE_RV32:
        np.testing.assert_array_equal(fw.run(m, tmp_path, codes, "rv32"), ref)


def test_generate_layout_and_plan(tmp_path: Path) -> None:
    """The ESP-IDF project, the arena plan (neighbours never overlap) and the size report."""
    m, _ = model_and_codes("mixed")
    out = fw.generate(m, tmp_path)
    comp = out / "components" / fw.COMPONENT
    for rel in ("CMakeLists.txt", "sdkconfig.defaults", "partitions.csv", "main/main.c",
                "main/CMakeLists.txt", "main/test_vectors.c"):
        assert (out / rel).is_file(), rel
    assert "idf_component_register" in (comp / "CMakeLists.txt").read_text()
    assert (comp / "idf_component.yml").is_file() and (comp / "qnn_dense_xnor.c").is_file()
    assert not (comp / fw.RUNNER).exists()
    rep = json.loads((out / "size_report.json").read_text())
    p = fw.plan(m)
    assert rep["arena_bytes"] == p.arena
    spans = [(o, o + s) for o, s in zip(p.offsets, p.buffers, strict=True)]
    for (a0, a1), (b0, b1) in zip(spans, spans[1:], strict=False):
        assert a1 <= b0 or b1 <= a0  # a layer's input and output never overlap
    assert all(a >= 0 and b <= p.arena and a % 4 == 0 for a, b in spans)
    assert rep["weights_bytes"] == sum(lp.weights.nbytes for lp in p.layers)
    assert rep["budgets"]["esp32"]["fits"]
    # UINT8 and INT5 weights: two MACs per multiply, the packed input pairs in the scratch
    assert [lp.kernel for lp in p.layers] == ["int8_pairs", "xnor", "int8_pairs"]
    assert rep["layers"][0]["kernel_choice"] == "two MACs per 32-bit multiply"
    assert rep["arena_scratch"] == [  # the packed input pairs: ceil(65 / 2), ceil(9 / 2)
        {"offset": p.scratch[0], "bytes": 4 * 33, "layer": "dense0"},
        {"offset": p.scratch[2], "bytes": 4 * 5, "layer": "dense2"}]
    assert "qnn_dense_int8_pairs(&qflow_layer0, (const int8_t *)in, arena + " in \
        (comp / "model.c").read_text()
    assert '"qnn_dense_int8_pairs.c"' in (comp / "CMakeLists.txt").read_text()


def test_bipolar_storage_follows_the_consumer(tmp_path: Path) -> None:
    """A BIPOLAR activation is bits only where the XNOR kernel reads it, int8 -1/+1 (with
    an int8-sized buffer) where multi-bit weights do; a BIPOLAR model input into a
    non-XNOR layer is read as the caller's int8 -1/+1 codes, without conversion."""
    m, _ = model_and_codes("bip_chain")  # XNOR -> packed INT2 -> XNOR
    p = fw.plan(m)
    assert [lp.kernel for lp in p.layers] == ["xnor", "packed", "xnor"]
    assert [lp.out_kind for lp in p.layers] == ["INT8", "BITS", "ACC"]
    assert (p.layers[0].base, p.layers[0].step) == (-1, 2)
    assert [(lp.in_bits, lp.in_signed) for lp in p.layers] == [(1, False), (2, True),
                                                                (1, False)]
    assert p.input_kind == "bits" and p.buffers == [12, 36, 4]  # 70 bits, 33 int8, 20 bits
    m, _ = model_and_codes("bip_w8")
    p = fw.plan(m)
    assert [lp.kernel for lp in p.layers] == ["int8_pairs", "int8_pairs"]
    assert [lp.out_kind for lp in p.layers] == ["INT8", "ACC"]
    assert p.input_kind == "direct" and p.input_buffer == 0 and p.buffers == [20]
    out = fw.generate(m, tmp_path)
    comp = out / "components" / fw.COMPONENT
    src = (comp / "model.c").read_text()
    assert "qnn_pack_bipolar" not in src
    assert "qnn_dense_int8_pairs(&qflow_layer0, (const int8_t *)in, arena + " in src
    assert "-1 or +1 each" in (comp / "model.h").read_text()
    assert fw.plan_layer(0, m.layers[0], bits_out=True).out_kind == "BITS"
    with pytest.raises(fw.FirmwareError, match="cannot be stored as bits"):
        fw.plan_layer(0, model_and_codes("w8a8")[0].layers[0], bits_out=True)


def test_budget_errors(tmp_path: Path) -> None:
    """The arena and ESP-IDF's own RAM against each chip's SRAM; a failure names the
    largest part of the arena, its size and the budget."""
    rep = {"model": "m", "arena_bytes": 401 * 1024, "weights_bytes": 0, "threshold_bytes": 0,
           "arena_buffers": [{"offset": 0, "bytes": 300 * 1024, "holds": "the outputs of d0"},
                             {"offset": 300 * 1024, "bytes": 100 * 1024,
                              "holds": "the outputs of d1"}],
           "arena_scratch": [{"offset": 400 * 1024, "bytes": 1024, "layer": "d1"}],
           "code_bytes": fw.CODE_BYTES_ESTIMATE, "code_bytes_source": "estimate",
           "esp_idf_flash_bytes": fw.ESP_IDF_FLASH_BYTES,
           "esp_idf_ram_bytes": fw.ESP_IDF_RAM_BYTES, "layers": []}
    with pytest.raises(fw.FirmwareError, match="arena needs .* more than the 400 KB SRAM"):
        fw.check_budget(rep, "esp32c3")
    with pytest.raises(fw.FirmwareError, match=r"largest: buffer at 0 holding the outputs "
                       r"of d0, 307200 bytes\) \+ ESP-IDF's own 81920 bytes of RAM"):
        fw.check_budget(rep, "esp32c3")
    fw.check_budget(rep, "esp32s3")
    big = random_model([6000, 800, 4], ["INT8", "INT8"], ["INT8"], "INT8")
    with pytest.raises(fw.FirmwareError, match="weights and thresholds need"):
        fw.generate(big, tmp_path)


def test_flash_budget_counts_code_and_esp_idf(tmp_path: Path) -> None:
    """#10: the app partition holds the constants, the code and ESP-IDF itself. Constants
    of 4.01 MB fit the 4032 KB partition alone, not with the rest: the error names the
    largest array, every size and the budget. Measured code replaces the estimate."""
    m = random_model([4000, 1000, 4], ["INT8", "INT8"], ["BIPOLAR"], "INT8")
    p = fw.plan(m)
    const = p.weight_bytes + p.threshold_bytes
    assert fw.CONSTANTS_ROOM < const <= fw.APP_PARTITION
    assert p.layers[0].kernel == "int8"  # compacted, and still too big
    with pytest.raises(fw.FirmwareError) as e:
        fw.generate(m, tmp_path)
    msg = str(e.value)
    for part in (f"weights and thresholds need {const} bytes",
                 "largest: the weights of dense0, 4000000 bytes",
                 f"code {fw.CODE_BYTES_ESTIMATE} bytes (estimate",
                 f"ESP-IDF's own {fw.ESP_IDF_FLASH_BYTES} bytes",
                 f"= {const + fw.CODE_BYTES_ESTIMATE + fw.ESP_IDF_FLASH_BYTES} bytes of flash",
                 "more than the 4032 KB app partition"):
        assert part in msg, msg
    assert not (tmp_path / "firmware").exists()
    small, _ = model_and_codes("w1a1")
    rep = fw.size_report(fw.plan(small), "esp32", code_bytes=12345)
    assert rep["code_bytes"] == 12345 and rep["code_bytes_source"].startswith("measured")
    assert rep["flash_bytes_needed"] == (rep["weights_bytes"] + rep["threshold_bytes"] + 12345
                                         + fw.ESP_IDF_FLASH_BYTES)
    assert rep["ram_bytes_needed"] == rep["arena_bytes"] + fw.ESP_IDF_RAM_BYTES
    assert rep["weights"] == sum(la.weights.size for la in small.layers)
    assert rep["constant_bytes_per_weight"] == pytest.approx(
        (rep["weights_bytes"] + rep["threshold_bytes"]) / rep["weights"])


def test_unknown_layer_kind_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Model-level planning asks each layer's kind for its op: a kind without a firmware op
    is refused with the layer's name and the stage."""
    monkeypatch.setitem(LAYER_KINDS, "upsample", DenseLayer)  # the IR knows it, firmware not
    m, _ = model_and_codes("w1a1")
    m.layers[1].kind = "upsample"
    with pytest.raises(IRError, match="layer dense1 .*'upsample' is not supported by the "
                       "firmware backend"):
        fw.plan(m)


def test_wide_accumulator_rejected() -> None:
    m = random_model([8, 4], ["INT8"], [], "INT8")
    m.layers[0].acc_max = 2**40
    with pytest.raises(fw.FirmwareError, match="accumulator needs 42 bits"):
        fw.plan_layer(0, m.layers[0])


@rv32
def test_build_report_and_cli(tmp_path: Path) -> None:
    """`qflow firmware DIR --inputs X --limit N` writes firmware.json: both targets equal to
    golden, weights in flash, instruction counts; `qflow flash` names what is missing."""
    m, codes = model_and_codes("w1a1", n=12)
    m.save(tmp_path)
    mark(tmp_path)
    np.save(tmp_path / "x.npy", codes.astype(np.float32))
    p = argparse.ArgumentParser()
    fw.register_cli(p.add_subparsers(dest="command"))
    a = p.parse_args(["firmware", str(tmp_path), "--inputs", str(tmp_path / "x.npy"),
                      "--limit", "10"])
    a.func(a)
    r = json.loads((tmp_path / "firmware.subset.json").read_text())  # --inputs, --limit
    assert r["all_equal"] and r["samples"] == 10
    assert r["agreement"]["host"]["equal"] == r["agreement"]["rv32"]["equal"] == 10
    assert r["rv32_placement"]["constant_bytes_in_ram"] == 0
    assert r["rv32_placement"]["constant_bytes_in_flash"] >= r["sizes"]["weights_bytes"]
    assert r["instructions_per_inference"] > 0 and 0 < r["instructions_per_mac"]["binary"] < 2
    assert len(r["layers"]) == 3
    assert r["sizes"]["code_bytes"] == r["rv32_elf_bytes"]["text"]
    assert json.loads((tmp_path / "firmware" / "size_report.json").read_text()) == r["sizes"]
    a = p.parse_args(["flash", str(tmp_path), "--port", "/dev/null"])
    if not shutil.which("idf.py"):
        with pytest.raises(fw.FirmwareError, match="idf.py is not on PATH"):
            a.func(a)


@pytest.mark.parametrize(("cwd", "relative"), [("repo", True), ("other", True),
                                             ("other", False)])
def test_build_dir_relative_or_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        cwd: str, relative: bool) -> None:
    """#10: `qflow run --backend firmware|firmware-rv32` and `qflow firmware` take the build
    folder relative to the working directory (the repository's or another) or absolute."""
    from flow.cli import main

    m, codes = model_and_codes("w1a1_u8in", n=6)
    build = tmp_path / "build" / "m"
    m.save(build)
    mark(build)
    x = tmp_path / "x.npy"
    np.save(x, codes.astype(np.float32))
    here = ROOT if cwd == "repo" else tmp_path / "elsewhere"
    here.mkdir(exist_ok=True)
    monkeypatch.chdir(here)
    name = os.path.relpath(build, here) if relative else str(build)
    assert Path(name).is_absolute() != relative
    want = golden.dequantize_output(m.output, golden.run_codes(m, codes))
    for backend in ["firmware", *(["firmware-rv32"] if HAVE_RV32 else [])]:
        y = tmp_path / f"y_{backend}.npy"
        assert main(["run", name, "--backend", backend, "--inputs", str(x),
                     "--outputs", str(y)]) == 0, backend
        np.testing.assert_array_equal(np.load(y), want)
    if HAVE_RV32:
        assert main(["firmware", name, "--inputs", str(x)]) == 0
        r = json.loads((build / "firmware.subset.json").read_text())
        assert r["all_equal"] and r["agreement"]["host"]["equal"] == 6
        assert r["agreement"]["rv32"]["equal"] == 6


def test_fingerprint_regenerates_for_another_model(tmp_path: Path) -> None:
    """The generated folder carries flow.fingerprint's stamp: ensure_generated keeps it for
    the same IR and sources and regenerates it for another IR."""
    m, _ = model_and_codes("w1a1")
    out = fw.generate(m, tmp_path)
    assert is_current(out, m, fw.generator_sources())
    stamp = (out / STAMP).stat().st_mtime_ns
    assert fw.ensure_generated(m, tmp_path) == out and (out / STAMP).stat().st_mtime_ns == stamp
    other, _ = model_and_codes("w4a4")
    assert not is_current(out, other, fw.generator_sources())
    fw.ensure_generated(other, tmp_path)
    assert is_current(out, other, fw.generator_sources())
    assert "qflow_model_run" in (out / "components" / fw.COMPONENT / "model.c").read_text()
    assert "w4a4" in (out / "components" / fw.COMPONENT / "model.h").read_text()
    assert "fingerprint" not in json.loads((out / "size_report.json").read_text())


def test_input_contract(tmp_path: Path) -> None:
    """Codes outside the input type are refused by flow.inputs.check_codes, before a build."""
    m, codes = model_and_codes("w8a8", n=4)
    codes[2, 5] = 256
    with pytest.raises(InputError, match="sample 2, feature 5: code 256"):
        fw.run(m, tmp_path, codes)
    assert not (tmp_path / "firmware_build").exists()


@pytest.mark.parametrize("fixture", ["tfc_w1a1", "digits_default"])
def test_real_model_equals_golden(tmp_path: Path, request: pytest.FixtureRequest,
                                  fixture: str) -> None:
    """BNN-PYNQ's TFC-w1a1 and the default config trained here, on both targets."""
    model, codes = request.getfixturevalue(fixture)
    codes = codes[:200]
    outputs, details = fw.measure(model, tmp_path, codes, sanitize=True)
    ref = golden.run_codes(model, codes)
    np.testing.assert_array_equal(outputs["host"], ref)
    np.testing.assert_array_equal(outputs["rv32"], ref)
    assert details["rv32_placement"]["constant_bytes_in_ram"] == 0


@pytest.mark.parametrize("per_channel_scale", [False, True])
def test_example_app_on_host(tmp_path: Path, per_channel_scale: bool) -> None:
    """The ESP-IDF example app, built on the host against a stub esp_timer.h and run:
    every embedded test vector agrees with the golden model. Per-channel output scales
    (of either sign) make the prediction go through the float output stage."""
    m, _ = model_and_codes("w8a8")
    if per_channel_scale:
        m.output.acc_scale = np.random.default_rng(0).uniform(-2, 2, size=5)
        assert not fw.output_is_monotonic(m)
    out = fw.generate(m, tmp_path)
    stub = fw.template_dir() / "harness"  # esp_timer.h and esp_stub.c stand in for ESP-IDF
    comp = out / "components" / fw.COMPONENT
    exe = fw.compile_program([*sorted(comp.glob("*.c")), *sorted((out / "main").glob("*.c")),
                              stub / "esp_stub.c"], tmp_path / "app", "host",
                             [f"-I{comp}", f"-I{stub}", f"-I{out / 'main'}", *fw.SANITIZE])
    text = fw.run_program(exe, "host", tmp_path)
    assert "qflow: 16/16 accumulators equal, 16/16 predictions equal" in text, text


def test_chip_comes_from_the_build_config(digits_build: Path, tmp_path: Path) -> None:
    """The config's firmware.chip reaches the firmware through the IR (export keeps it);
    `--chip` overrides it."""
    from flow.backends.firmware.package import target_chip
    from flow.ir import load

    model = load(digits_build)
    assert model.meta["firmware"] == {"chip": "esp32"}  # export wrote the config's section
    model.meta["firmware"] = {"chip": "esp32c3"}
    out = fw.generate(model, tmp_path)
    assert json.loads((out / "size_report.json").read_text())["chip"] == "esp32c3"
    assert target_chip(model, "esp32s3") == "esp32s3"
    model.meta.pop("firmware")
    assert target_chip(model) == "esp32"
