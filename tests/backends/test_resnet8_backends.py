"""MLPerf Tiny's ResNet-8 of Brevitas' QuantBasicBlocks (3x32x32; 16, 32, 64 filters;
projections at the stride-2 stacks; global average pool; dense 10) compiled with a folding
of 65,536 cycles a frame and run by every backend, each equal to golden: the RTL top with
its forks, joins and cycle-model skip FIFOs (latency as predicted), the HLS C simulation,
the firmware on the host and on RV32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flow import backends, golden
from flow.backends import rtl
from flow.export import compile_onnx
from flow.train.residual import RESNET8_BLOCKS
from tests.helpers.firmware import HAVE_RV32
from tests.helpers.residual import residual_inputs, residual_onnx

SHAPE = (3, 32, 32)


@pytest.mark.slow
def test_resnet8_on_every_backend(tmp_path: Path) -> None:
    path = residual_onnx(tmp_path, SHAPE, 16, RESNET8_BLOCKS)
    build = tmp_path / "build"
    model = compile_onnx(path, build, {"target_cycles": 65536})
    codes = golden.quantize_input(model.input, residual_inputs(SHAPE, 2).reshape(2, -1))
    ref = golden.run_codes(model, codes)
    acc, timing = rtl.simulate_codes(model, build, codes)
    np.testing.assert_array_equal(acc, ref)
    assert timing.frame_end[0] - timing.frame_start[0] == timing.expected_latency
    for name in ("hls", "firmware", *(("firmware-rv32",) if HAVE_RV32 else ())):
        np.testing.assert_array_equal(backends.run(name, model, build, codes), ref, name)
