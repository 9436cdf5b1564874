"""Brevitas models built for the tests, to export to QONNX and lower: random MLPs over the
quantizer variants (`MLP_VARIANTS`, `random_mlp`) and small CNNs (`SmallCNN`, `randomized`),
with the input images to run them on (`inputs`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn

from flow.train.models import build
from flow.train.quantizers import act_quant, weight_quant

BIN = {"quant": "binary"}
U8 = {"quant": "uint", "bits": 8, "max_val": 1.0}

# (input, weight, activation) quantizer specs over the course material's options
MLP_VARIANTS = {
    "w1a1-in8": ({"quant": "uint", "bits": 8, "max_val": 1.0}, {"quant": "binary"},
                 {"quant": "binary"}),
    "w1a1-bipolar-in": ({"quant": "binary"}, {"quant": "binary"}, {"quant": "binary"}),
    "ternary-a2": ({"quant": "uint", "bits": 4, "max_val": 1.0},
                   {"quant": "ternary", "po2": True}, {"quant": "uint", "bits": 2}),
    "w2a2-int": ({"quant": "int", "bits": 2}, {"quant": "int", "bits": 2},
                 {"quant": "int", "bits": 2}),
    "w4a4-perchannel": ({"quant": "uint", "bits": 8, "max_val": 1.0},
                        {"quant": "int", "bits": 4, "per_channel": True},
                        {"quant": "uint", "bits": 4}),
    "w8a8": ({"quant": "uint", "bits": 8, "max_val": 1.0}, {"quant": "int", "bits": 8},
             {"quant": "uint", "bits": 8, "max_val": 8.0}),
    "w3a3-asym": ({"quant": "uint", "bits": 8, "max_val": 1.0},
                  {"quant": "int_asym", "bits": 3, "po2": True},
                  {"quant": "int_asym", "bits": 3, "po2": True}),
    "xnor-scaled": ({"quant": "binary"}, {"quant": "binary_xnor", "po2": True},
                    {"quant": "binary"}),
}


def random_mlp(spec: tuple[dict, dict, dict], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    inp, w, a = spec
    model = build({"hidden": [32, 24], "input": inp, "weight": w, "act": a}, (1, 8, 8), 10)
    model.train()
    with torch.no_grad():  # a few batches in training mode set statistics-based scales
        for _ in range(3):
            model(torch.rand(16, 1, 8, 8))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n) * 3)
                m.running_var.copy_(torch.rand(n) * 10 + 0.5)
                m.weight.copy_(torch.randn(n))
                m.bias.copy_(torch.randn(n))
    return model.eval()


class SmallCNN(nn.Module):
    """QuantIdentity input, then per block QuantConv2d + BatchNorm2d + activation quantizer
    (+ MaxPool2d after it, or before it with pool="before"), flatten (NCHW, or NHWC with
    channels_last_flatten), QuantLinear + BatchNorm1d + quantizer, QuantLinear."""

    def __init__(self, in_shape: tuple[int, int, int], blocks: list[dict[str, Any]],
                 inp: dict[str, Any], w: dict[str, Any], act: dict[str, Any],
                 hidden: int = 16, classes: int = 10, channels_last_flatten: bool = False
                 ) -> None:
        super().__init__()
        self.center = inp["quant"] in ("binary", "int", "int_asym")  # 2x - 1, as BNN-PYNQ
        self.channels_last_flatten = channels_last_flatten
        layers: list[nn.Module] = [QuantIdentity(act_quant=act_quant(inp, "input"))]
        c = in_shape[0]
        for b in blocks:
            co = c if b.get("depthwise") else b["out"]
            layers += [QuantConv2d(c, co, b.get("k", 3), stride=b.get("stride", 1),
                                   padding=b.get("pad", 0), groups=c if b.get("depthwise") else 1,
                                   bias=b.get("bias", False),
                                   weight_quant=weight_quant(b.get("w", w), "conv")),
                       nn.BatchNorm2d(co)]
            pool = [nn.MaxPool2d(b.get("pool_k", 2), b.get("pool_stride"),
                                 ceil_mode=b.get("ceil", False))] if b.get("pool") else []
            quant = [QuantIdentity(act_quant=act_quant(b.get("act", act), "act"))]
            layers += pool + quant if b.get("pool") == "before" else quant + pool
            c = co
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *in_shape)).numel()
        self.head = nn.Sequential(
            QuantLinear(n_flat, hidden, bias=False, weight_quant=weight_quant(w, "dense")),
            nn.BatchNorm1d(hidden), QuantIdentity(act_quant=act_quant(act, "act")),
            QuantLinear(hidden, classes, bias=False, weight_quant=weight_quant(w, "dense")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            x = 2.0 * x - 1.0
        x = self.features(x)
        if self.channels_last_flatten:
            x = x.permute(0, 2, 3, 1)
        return self.head(x.reshape(x.shape[0], -1))


def randomized(model: SmallCNN, in_shape: tuple[int, int, int], seed: int,
               positive_gamma: bool = False) -> SmallCNN:
    """Statistics-based scales set by a few training batches, then random batch norms
    (negative gammas flip channels unless positive_gamma)."""
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, *in_shape))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n) * 3)
                m.running_var.copy_(torch.rand(n) * 10 + 0.5)
                gamma = torch.randn(n)
                m.weight.copy_(gamma.abs() if positive_gamma else gamma)
                m.bias.copy_(torch.randn(n))
    return model.eval()


def inputs(in_shape: tuple[int, int, int], n: int, seed: int = 1) -> np.ndarray:
    """Random images in [0, 1] (not symmetric), with the all-0 and all-1 extremes."""
    x = np.random.default_rng(seed).random((n, *in_shape), dtype=np.float32)
    x[0], x[1] = 0.0, 1.0
    return x
