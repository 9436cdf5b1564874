"""Residual networks of brevitas_examples' own QuantBasicBlock (FINN's bnn_pynq ResNet
block: conv-BN-QuantReLU, conv-BN into a quantizer shared with the shortcut, the add, then
a QuantReLU; a 1x1 strided projection with BN where the shape changes), at any size:
MLPerf Tiny's ResNet-8 is `resnet8()`. Exported by Brevitas' TorchScript exporter: its
dynamo exporter traces plain tensors, where QuantBasicBlock asserts QuantTensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

RESNET8_BLOCKS = [(16, 1), (32, 2), (64, 2)]  # MLPerf Tiny's image classification model


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


def resnet8(classes: int = 10) -> SmallResNet:
    """MLPerf Tiny's ResNet-8: 3x32x32; a 16-filter stem; stacks of 16, 32 and 64 filters,
    the last two starting with stride 2 and a 1x1 projection; global average pool; dense."""
    return SmallResNet((3, 32, 32), 16, RESNET8_BLOCKS, classes)


def export_residual(model: nn.Module, sample: torch.Tensor, path: Path) -> Path:
    """QONNX of a residual network (Brevitas' TorchScript exporter), written atomically."""
    from flow.export import export_qonnx

    return export_qonnx(model, sample, path, dynamo=False)
