"""MLPerf Tiny's ResNet-8 (flow.train.residual.resnet8: brevitas_examples' QuantBasicBlock,
3x32x32, 16/32/64 filters, 1x1 strided projections, global average pool, dense 10) with
random weights, batch norms and activation scales calibrated on random images: what an
instruction-count and size benchmark needs (the counts depend on the shapes and the
activation forms, not on training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def resnet8_calibrated(seed: int = 0, calibration_batches: int = 4) -> torch.nn.Module:
    from flow.train.residual import resnet8

    torch.manual_seed(seed)
    net = resnet8()
    net.train()  # batch statistics and activation scales (QuantBasicBlock asserts
    with torch.no_grad():  # QuantTensors, which Brevitas' calibration_mode turns off)
        for _ in range(calibration_batches):
            net(torch.rand(8, 3, 32, 32))
    return net.eval()


def macs(model: Any) -> int:
    """Multiply-accumulates of the weighted layers per inference."""
    return sum(int(lay.weights.size) * int(np.prod(getattr(lay, "out_shape", (1, 1))[:2]))
               for lay in model.layers if lay.weighted)


def firmware_figures(folder: Path, samples: int = 1) -> dict[str, Any]:
    """ResNet-8 through the firmware on RV32: instructions per inference and per MAC, the
    arena (a skip tensor held across its branch), flash, with golden checked."""
    from flow import golden
    from flow.backends import firmware as fw
    from flow.lower import lower
    from flow.synthetic import random_codes
    from flow.train.residual import export_residual

    folder.mkdir(parents=True, exist_ok=True)
    path = export_residual(resnet8_calibrated(), torch.rand(1, 3, 32, 32),
                           folder / "resnet8.qonnx.onnx")
    model = lower(path, name="resnet8")
    codes = random_codes(model, samples)
    outputs, details = fw.measure(model, folder / "fw", codes)
    ref = golden.run_codes(model, codes)
    instructions = details["instructions_per_inference"]
    return {
        "model": "ResNet-8 (MLPerf Tiny), Brevitas QuantBasicBlock, int8 weights per channel, "
                 "UINT8 activations, random weights",
        "equal_to_golden": all(np.array_equal(a, ref) for a in outputs.values()),
        "macs": macs(model), "instructions_per_inference": instructions,
        "instructions_per_mac": instructions / macs(model),
        "estimated_latency_ms_at_160mhz": instructions / 160e3,
        "arena_bytes": details["sizes"]["arena_bytes"],
        "flash_bytes_needed": details["sizes"]["flash_bytes_needed"],
        "requantized_layers": len(model.meta.get("requantized_layers", {})),
        "layers": details.get("layers"),
    }
