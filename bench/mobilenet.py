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

from pathlib import Path
from typing import Any

import numpy as np
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


def int8_weights(model: Any) -> int:
    """The weights of the model's 8-bit weighted layers (the flash target's unit)."""
    return sum(int(layer.weights.size) for layer in model.layers
               if getattr(layer, "weights", None) is not None and layer.weight_dtype.bits == 8)


def flash_figures(folder: Path, alpha: float = 0.25, resolution: int = 96,
                  samples: int = 1) -> dict[str, Any]:
    """MobileNetV1-`alpha` at `resolution`, lowered both ways (thresholds only, and `auto`
    with its requantizations), through the firmware: constants (weights plus thresholds or
    requantization parameters and biases) per int8 weight against the issue's target of
    1.25 bytes + 8 KB, as planned (pair words) and in the compact form (1 byte per weight),
    and, for the auto build, instructions per inference on RV32 with golden checked."""
    from flow import golden
    from flow.backends import firmware as fw
    from flow.backends.firmware.budget import size_report
    from flow.export import export_qonnx
    from flow.lower import lower
    from flow.synthetic import random_codes

    folder.mkdir(parents=True, exist_ok=True)
    net = mobilenet_v1(alpha, resolution)
    path = export_qonnx(net, torch.rand(1, 3, resolution, resolution) * 2 - 1,
                        folder / "mobilenet.onnx")
    out: dict[str, Any] = {"model": f"MobileNetV1-{alpha} {resolution}x{resolution}x3, int8 "
                                    "per-channel weights, batch norm, ReLU, UINT8 activations"}
    for form in ("thresholds", "auto"):
        model = lower(path, name=f"mobilenet_v1_{form}", activation=form)
        weights = int8_weights(model)
        p = fw.plan(model)
        sizes = size_report(p, "esp32")
        constants = sizes["weights_bytes"] + sizes["threshold_bytes"]
        # the planner stores int8 weights as 16-bit pair words (two MACs per multiply) while
        # they fit the app partition; its compact form takes 1 byte per weight
        compact = sum((lp.compact() or lp).weight_bytes + lp.threshold_bytes + lp.bias_bytes
                      for lp in p.layers)
        entry: dict[str, Any] = {
            "int8_weights": weights, "weights_bytes": sizes["weights_bytes"],
            "activation_constant_bytes": sizes["threshold_bytes"],
            "constant_bytes": constants, "constant_bytes_per_int8_weight": constants / weights,
            "target_bytes": 1.25 * weights + 8192,
            "meets_target": constants <= 1.25 * weights + 8192,
            "compact_constant_bytes": compact, "compact_bytes_per_int8_weight": compact / weights,
            "compact_meets_target": compact <= 1.25 * weights + 8192,
            "requantized_layers": len(model.meta.get("requantized_layers", {})),
            "kept_thresholds": model.meta.get("kept_thresholds", {}),
            "inexact_layers": len(model.meta.get("inexact_layers", []))}
        if form == "auto":
            codes = random_codes(model, samples)
            outputs, details = fw.measure(model, folder / form, codes)
            ref = golden.run_codes(model, codes)
            entry["equal_to_golden"] = all(np.array_equal(a, ref) for a in outputs.values())
            entry["instructions_per_inference"] = details["instructions_per_inference"]
            entry["flash_bytes_needed"] = details["sizes"]["flash_bytes_needed"]
        out[form] = entry
    return out
