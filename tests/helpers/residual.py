"""Residual networks made of brevitas_examples' own QuantBasicBlock (FINN's bnn_pynq
ResNet block: conv-BN-QuantReLU, conv-BN into a quantizer shared with the shortcut, the
add, then a QuantReLU; a 1x1 stride-2 projection with BN where the shape changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


class SmallResNet(nn.Module):
    """Input quantizer, a stem conv-BN-QuantReLU, `blocks` QuantBasicBlocks (planes,
    stride), a global TruncAvgPool and a dense head: ResNet-8's shape at any size."""

    def __init__(self, in_shape: tuple[int, int, int], stem: int,
                 blocks: list[tuple[int, int]], classes: int = 10, act_bits: int = 8,
                 weight_bits: int = 8) -> None:
        super().__init__()
        import brevitas.nn as qnn
        from brevitas.quant import Int8WeightPerTensorFloat, TruncTo8bit
        from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock

        c, h, w = in_shape
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(c, stem, 3, padding=1, bias=False, weight_bit_width=8,
                                    weight_quant=Int8WeightPerTensorFloat)
        self.bn = nn.BatchNorm2d(stem)
        shared: Any = qnn.QuantReLU(bit_width=act_bits, return_quant_tensor=True)
        self.relu = shared
        layers = []
        planes_in = stem
        for planes, stride in blocks:
            block = QuantBasicBlock(planes_in, planes, stride=stride, shared_quant_act=shared,
                                    act_bit_width=act_bits, weight_bit_width=weight_bits)
            layers.append(block)
            shared, planes_in = block.relu_out, planes
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        self.blocks = nn.Sequential(*layers)
        self.pool = qnn.TruncAvgPool2d(kernel_size=(h, w), trunc_quant=TruncTo8bit,
                                       float_to_int_impl_type="ROUND")
        self.head = qnn.QuantLinear(planes_in, classes, bias=False, weight_bit_width=8,
                                    weight_quant=Int8WeightPerTensorFloat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn(self.stem(self.inp(x))))
        out = self.pool(self.blocks(out))
        return self.head(out.view(out.size(0), -1))


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
    """A SmallResNet exported to QONNX by Brevitas' TorchScript exporter: its dynamo
    exporter traces with plain tensors, where QuantBasicBlock asserts QuantTensors."""
    from brevitas.export import export_qonnx

    torch.manual_seed(seed)
    model = calibrated(SmallResNet(in_shape, stem, blocks, act_bits=act_bits), in_shape, seed)
    path = folder / "resnet.qonnx.onnx"
    with torch.no_grad():
        export_qonnx(model, torch.rand(1, *in_shape), export_path=str(path), dynamo=False)
    return path


def residual_inputs(in_shape: tuple[int, int, int], n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *in_shape), dtype=np.float32)
