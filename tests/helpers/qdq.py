"""ONNX QDQ models made in the test, as a user makes them: a float PyTorch model exported
with torch.onnx.export, then quantized by onnxruntime's quantize_static on digits samples
(nothing downloaded)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from flow.data import load_digits


def residual_block():  # -> torch.nn.Module: onnxruntime calibrates its branches apart
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
            self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.stem(x)
            return self.head(torch.relu(self.body(h) + h))

    return Block()


def float_model(arch: str, seed: int = 0):  # -> torch.nn.Module (torch imported here only)
    import torch

    torch.manual_seed(seed)
    n = torch.nn
    if arch == "mlp":
        return n.Sequential(n.Linear(64, 32), n.ReLU(), n.Linear(32, 16), n.ReLU(), n.Linear(16, 10))
    if arch == "residual":
        return residual_block()
    if arch == "mobile":  # a MobileNet block: stride 2, ReLU6, depthwise, pointwise, global pool
        return n.Sequential(n.Conv2d(1, 8, 3, stride=2, padding=1), n.ReLU6(),
                            n.Conv2d(8, 8, 3, padding=1, groups=8), n.BatchNorm2d(8), n.ReLU6(),
                            n.Conv2d(8, 16, 1), n.ReLU(), n.AdaptiveAvgPool2d(1), n.Flatten(),
                            n.Linear(16, 10))
    return n.Sequential(n.Conv2d(1, 8, 3, padding=1), n.ReLU(), n.MaxPool2d(2),
                        n.Conv2d(8, 16, 3, padding=1), n.ReLU(), n.Flatten(),
                        n.Linear(16 * 4 * 4, 10))


def input_shape(arch: str) -> tuple[int, ...]:
    return (64,) if arch == "mlp" else (1, 8, 8)


def calibration_samples(arch: str, n: int = 64) -> np.ndarray:
    return load_digits().x_train[:n].reshape(-1, *input_shape(arch)).astype(np.float32)


def calibration_reader(arch: str, n: int = 64):  # -> onnxruntime's CalibrationDataReader
    from onnxruntime.quantization import CalibrationDataReader

    x = calibration_samples(arch, n)

    class Samples(CalibrationDataReader):
        def __init__(self) -> None:
            self.samples = iter([{"x": x[i:i + 1]} for i in range(len(x))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.samples, None)

    return Samples()


def qdq_model(folder: Path, arch: str, per_channel: bool, activations: str = "QUInt8",
              seed: int = 0) -> Path:
    """The float model `arch` exported (to folder/ARCH.onnx) and quantized to QDQ: int8
    weights (per output channel or per tensor), `activations` QUInt8 or QInt8, calibrated
    on digits."""
    import torch
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    fp32 = folder / f"{arch}.onnx"
    torch.onnx.export(float_model(arch, seed).eval(),
                      torch.from_numpy(calibration_samples(arch, 1)), str(fp32),
                      input_names=["x"], output_names=["y"], dynamo=False)
    out = folder / f"{arch}_{'pc' if per_channel else 'pt'}_{activations}.qdq.onnx"
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    quantize_static(str(fp32), str(out), calibration_reader(arch), quant_format=QuantFormat.QDQ,
                    per_channel=per_channel, activation_type=getattr(QuantType, activations),
                    weight_type=QuantType.QInt8)
    return out
