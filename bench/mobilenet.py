"""An int8 MobileNetV1 in Brevitas, the layer pattern of TFLite's int8 models and of MLPerf
Tiny's visual wake words network (MobileNetV1-0.25 on 96x96 RGB): a 3x3 stride-2
convolution, then 13 depthwise-separable blocks (3x3 depthwise, 1x1 pointwise), each
convolution with per-channel int8 weights (float scales), batch norm, ReLU and a UINT8
quantizer; a global average pool (Brevitas' TruncAdaptiveAvgPool2d) and a dense layer.

Weights are random and the batch norms and activation scales calibrated on random images,
which is all a flash and instruction-count benchmark needs: the constants' sizes depend on
the shapes and on whether each layer's requantization is proven, not on training.
"""

from __future__ import annotations

import torch
from brevitas.graph.calibrate import calibration_mode
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAdaptiveAvgPool2d
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFloat,
)
from torch import nn

# (output channels at width 1.0, stride) of the 13 separable blocks
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int) -> list[nn.Module]:
    return [QuantConv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups,
                        bias=False, weight_quant=Int8WeightPerChannelFloat),
            nn.BatchNorm2d(c_out),
            QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)]


def mobilenet_v1(alpha: float = 0.25, resolution: int = 96, classes: int = 2,
                 seed: int = 0, calibration_batches: int = 4) -> nn.Module:
    """MobileNetV1 at width multiplier `alpha`, eval mode, calibrated on random images."""
    torch.manual_seed(seed)
    width = max(8, int(32 * alpha))
    layers: list[nn.Module] = [QuantIdentity(act_quant=Int8ActPerTensorFloat,
                                             return_quant_tensor=True),
                               *conv_bn_relu(3, width, 3, 2, 1)]
    for channels, stride in BLOCKS:
        out = max(8, int(channels * alpha))
        layers += conv_bn_relu(width, width, 3, stride, width)  # depthwise
        layers += conv_bn_relu(width, out, 1, 1, 1)  # pointwise
        width = out
    layers += [TruncAdaptiveAvgPool2d((1, 1)), nn.Flatten(),
               QuantLinear(width, classes, bias=True, weight_quant=Int8WeightPerTensorFloat)]
    net = nn.Sequential(*layers)
    images = [torch.rand(8, 3, resolution, resolution) * 2 - 1
              for _ in range(calibration_batches)]
    net.train()
    with torch.no_grad():
        for x in images:  # batch statistics
            net(x)
    net.eval()
    with torch.no_grad(), calibration_mode(net):
        for x in images:  # activation scales
            net(x)
    return net
