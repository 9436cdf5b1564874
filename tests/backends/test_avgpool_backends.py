"""Average pooling on every backend: the firmware (host with ASan/UBSan, RV32IMC), the HLS
C simulation and the RTL simulation equal the golden model on random CNNs (shifts of either
sign, saturation, padding, global pooling, BIPOLAR sums) and on pools lowered from
Brevitas; the RTL's window stage alone under backpressure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.ir import AvgPoolLayer
from flow.lower import lower
from flow.synthetic import random_cnn_model, random_codes
from tests.helpers.avgpool import AVGPOOL_CNNS, VARIANTS, export
from tests.helpers.backends import every_backend_equals_golden, random_folding
from tests.helpers.firmware import HAVE_RV32
from tests.helpers.models import inputs
from tests.helpers.rtl import check_cnn, window_stage_case

# ---- firmware: host (ASan/UBSan) and RV32IMC equal golden -----------------------------------


@pytest.mark.parametrize("name, target", [
    ("shifts", "rv32"), pytest.param("shifts", "host", marks=pytest.mark.slow),
    *(pytest.param("global", target, marks=pytest.mark.slow) for target in ("host", "rv32"))])
def test_firmware_equals_golden(tmp_path: Path, name: str, target: str) -> None:
    if target == "rv32" and not HAVE_RV32:
        pytest.skip("riscv64-unknown-elf-gcc / QEMU missing")
    shape, t, layers = AVGPOOL_CNNS[name]
    m = random_cnn_model(shape, t, layers, seed=3, name=name)
    codes = random_codes(m, 24, seed=4)
    pools = [k for k, la in enumerate(m.layers) if isinstance(la, AvgPoolLayer)]
    trace = golden.trace_codes(m, codes)
    for k in pools:  # many codes, signed ones below 0, the saturating one at its top
        assert len(np.unique(trace[k])) >= 5
        assert trace[k].min() < 0 or m.layers[k].out_dtype.min == 0
    acc = fw.run(m, tmp_path, codes, target=target, sanitize=target == "host")
    np.testing.assert_array_equal(acc, golden.run_codes(m, codes))


@pytest.mark.slow
def test_brevitas_model_on_firmware(tmp_path: Path) -> None:
    """Lowered from Brevitas (a 3x3 stride-2 TruncAvgPool2d between convs): firmware on
    the host equals golden."""
    path, _ = export("k3-stride2-int4-floor", tmp_path)
    model = lower(path)
    codes = golden.quantize_input(model.input, inputs(VARIANTS["k3-stride2-int4-floor"][0], 16))
    acc = fw.run(model, tmp_path / "fw", codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))


# ---- HLS C simulation equals golden ------------------------------------------------------


@pytest.mark.parametrize("name", ["shifts", pytest.param("global", marks=pytest.mark.slow)])
def test_hls_equals_golden(tmp_path: Path, name: str) -> None:
    from flow import backends
    model = random_folding(random_cnn_model(*AVGPOOL_CNNS[name], seed=3, name=name),
                           np.random.default_rng(5))
    codes = random_codes(model, 24, seed=4)
    assert np.array_equal(backends.run("hls", model, tmp_path, codes),
                          golden.run_codes(model, codes))


# ---- RTL simulation (Verilator) equals golden ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shifts", "global"])
def test_rtl_equals_golden(tmp_path: Path, name: str) -> None:
    model = random_folding(random_cnn_model(*AVGPOOL_CNNS[name], seed=3, name=name),
                           np.random.default_rng(6))
    check_cnn(model, random_codes(model, 8, seed=4), tmp_path)


BACKEND_CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    # windows of padding only (whole rows and columns of them, before the last) sum to 0
    "wide_pads": ((2, 4, 5), "UINT4", [
        {"conv": 4, "k": 1, "pad": 1, "w": "INT3", "act": "UINT4"},
        {"avgpool": 2, "stride": 1, "pad": 3, "shift": 1, "out": "UINT4"},
        {"dense": 3, "w": "INT2"}]),
    # BIPOLAR codes summed as -1 / +1, padded taps as 0 (bits in RTL and HLS: widened),
    # from the input and from a conv's output
    "bipolar": ((3, 5, 5), "BIPOLAR", [
        {"avgpool": 2, "stride": 1, "pad": 1, "shift": 0, "out": "INT4"},
        {"conv": 4, "k": 3, "w": "BIPOLAR", "act": "BIPOLAR"},
        {"avgpool": 3, "stride": 1, "pad": 1, "shift": 1, "rounding": "FLOOR", "out": "INT4"},
        {"dense": 3, "w": "INT2"}]),
}


@pytest.mark.parametrize("name", sorted(BACKEND_CNNS))
def test_every_backend_equals_golden(tmp_path: Path, name: str) -> None:
    model = random_folding(random_cnn_model(*BACKEND_CNNS[name], seed=3, name=name),
                           np.random.default_rng(7))
    every_backend_equals_golden(model, random_codes(model, 12, seed=4), tmp_path)


def test_binary_brevitas_pool_on_every_backend(tmp_path: Path) -> None:
    """Lowered from Brevitas (binary activations, then a 4x4 TruncAvgPool2d)."""
    path, _ = export("k4-binary", tmp_path)
    model = lower(path)
    assert any(isinstance(la, AvgPoolLayer) and la.input_dtype.is_bipolar
               for la in model.layers)
    codes = golden.quantize_input(model.input, inputs(VARIANTS["k4-binary"][0], 8))
    every_backend_equals_golden(model, codes, tmp_path / "backends")


# (C, H, W) input, input type, layer, (PE, SIMD): the stage alone (cocotb, stalls)
RTL_STAGES = [
    ((4, 6, 6), "UINT4", {"avgpool": 2, "shift": -1, "out": "UINT8"}, (2, 1)),
    pytest.param((5, 7, 7), "INT4", {"avgpool": 3, "stride": 2, "pad": 1, "shift": 1,
                                     "out": "INT4"}, (5, 1), marks=pytest.mark.slow),
    pytest.param((3, 5, 5), "UINT8", {"avgpool": 2, "stride": 1, "shift": 3,
                                      "rounding": "FLOOR", "out": "UINT6"}, (1, 1),
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("shape, in_t, spec, folding", RTL_STAGES,
                         ids=lambda v: str(v) if isinstance(v, str) else None)
def test_rtl_stage(shape: tuple[int, int, int], in_t: str, spec: dict[str, Any],
                   folding: tuple[int, int], tmp_path: Path) -> None:
    window_stage_case(tmp_path, shape, in_t, spec, folding)
