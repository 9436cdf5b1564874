"""Residual networks of brevitas_examples' QuantBasicBlock (flow.train.residual) with
calibrated activation scales and random batch norms, exported to QONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from flow.train.residual import SmallResNet, export_residual


def calibrated(model: SmallResNet, in_shape: tuple[int, int, int], seed: int) -> SmallResNet:
    """Activation scales from a few batches, random batch norms (positive gammas: FINN's
    blocks keep one sign along the adds), then inference mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n) + 0.5)
                m.bias.copy_(torch.randn(n) * 0.2)
        model.train()
        for _ in range(3):
            model(torch.rand(8, *in_shape))
    return model.eval()


def residual_onnx(folder: Path, in_shape: tuple[int, int, int], stem: int,
                  blocks: list[tuple[int, int]], seed: int = 0, act_bits: int = 8) -> Path:
    """A calibrated SmallResNet exported to QONNX by Brevitas."""
    torch.manual_seed(seed)
    model = calibrated(SmallResNet(in_shape, stem, blocks, act_bits=act_bits), in_shape, seed)
    return export_residual(model, torch.rand(1, *in_shape), folder / "resnet.qonnx.onnx")


def residual_inputs(in_shape: tuple[int, int, int], n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *in_shape), dtype=np.float32)
