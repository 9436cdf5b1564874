"""Average-pooling models: Brevitas nets with a TruncAvgPool2d or TruncAdaptiveAvgPool2d
(PoolNet, its VARIANTS, exported to QONNX) and random integer CNNs with average pools
(AVGPOOL_CNNS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from brevitas.nn import (
    QuantConv2d,
    QuantIdentity,
    QuantLinear,
    TruncAdaptiveAvgPool2d,
    TruncAvgPool2d,
)
from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit
from brevitas.quant_tensor import QuantTensor
from torch import nn

from flow.export import export_qonnx
from flow.train.quantizers import act_quant, weight_quant
from tests.helpers.models import U8

W4 = {"quant": "int", "bits": 4}


class PoolNet(nn.Module):
    """Input quantizer, QuantConv2d + BatchNorm2d + activation quantizer (returning its
    QuantTensor), the average pool, optionally a second such conv, then QuantLinear."""

    def __init__(self, shape: tuple[int, int, int], channels: int, act: dict[str, Any],
                 pool: nn.Module, conv_after: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            QuantIdentity(act_quant=act_quant(U8, "input"), return_quant_tensor=True),
            QuantConv2d(shape[0], channels, 3, padding=1, bias=False,
                        weight_quant=weight_quant(W4, "conv")),
            nn.BatchNorm2d(channels),
            QuantIdentity(act_quant=act_quant(act, "act"), return_quant_tensor=True), pool]
        if conv_after:
            layers += [QuantConv2d(channels, 6, 3, bias=False, weight_quant=weight_quant(W4, "c")),
                       nn.BatchNorm2d(6),
                       QuantIdentity(act_quant=act_quant(act, "act"), return_quant_tensor=True)]
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, *shape)).value.numel()
        self.head = QuantLinear(n_flat, 10, bias=False, weight_quant=weight_quant(W4, "dense"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x)
        y = y.value if isinstance(y, QuantTensor) else y  # a plain tensor when exporting
        return self.head(y.reshape(y.shape[0], -1))


# name -> (input shape, channels, activation, pool, a conv after the pool)
VARIANTS: dict[str, tuple[tuple[int, int, int], int, dict[str, Any], nn.Module, bool]] = {
    # 4-bit codes, 2x2: 6-bit sums truncated "to 8 bits" shift left by 2
    "k2-uint4-round": ((3, 9, 9), 5, {"quant": "uint", "bits": 4}, TruncAvgPool2d(2), False),
    "k3-stride2-int4-floor": ((2, 11, 11), 7, {"quant": "int", "bits": 4},
                              TruncAvgPool2d(3, stride=2, trunc_quant=TruncTo8bit), True),
    # 8-bit codes summed over a 7x7 frame: a right shift, rounding half to even
    "global-adaptive-uint8-33ch": ((3, 7, 7), 33, {"quant": "uint", "bits": 8, "max_val": 4.0},
                                   TruncAdaptiveAvgPool2d(1), False),
    # kernel = the frame, truncated to 6 bits; a scale that is not a power of two
    "global-kernel-6bit-nonpo2": (
        (3, 5, 5), 9, {"quant": "uint", "bits": 6, "po2": False, "max_val": 3.0},
        TruncAvgPool2d(5, trunc_quant=RoundTo8bit.let(bit_width=6)), False),
    "k2-stride1-int8-floor-odd": ((3, 6, 6), 3, {"quant": "int", "bits": 8, "max_val": 2.0},
                                  TruncAvgPool2d(2, stride=1, trunc_quant=TruncTo8bit), True),
    # BIPOLAR codes (+-1): their window sums are integers too, of the kernel's parity
    "k4-binary": ((3, 9, 9), 5, {"quant": "binary"}, TruncAvgPool2d(4, stride=1), False),
}


def normalized(net: PoolNet, shape: tuple[int, int, int], seed: int) -> PoolNet:
    """Batch norms from the true statistics of random inputs, then a random gain and offset
    near one: activations spread over many codes (random statistics saturate them)."""
    torch.manual_seed(seed)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: the statistics of all batches
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.rand(16, *shape))
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features) + 0.5)
            m.bias.copy_(torch.rand(m.num_features))
    return net.eval()


def export(variant: str, folder: Path) -> tuple[Path, nn.Module]:
    shape, channels, act, pool, after = VARIANTS[variant]
    net = normalized(PoolNet(shape, channels, act, pool, after), shape, seed=len(variant))
    return export_qonnx(net, torch.rand(1, *shape), folder / "m.onnx"), net


# name -> (input shape, input type, layers) of a random CNN (flow.synthetic.random_cnn_model)
AVGPOOL_CNNS: dict[str, tuple[tuple[int, int, int], str, list[dict[str, Any]]]] = {
    # a left shift to UINT8, a saturating shift to UINT4 (the clamp), floor on signed codes
    # with padding; 33 channels, odd sizes
    "shifts": ((3, 9, 9), "UINT8", [
        {"conv": 33, "k": 3, "pad": 1, "w": "INT4", "act": "UINT4"},
        {"avgpool": 2, "shift": -2, "out": "UINT8"},
        {"conv": 7, "k": 1, "w": "INT4", "act": "INT4"},
        {"avgpool": 3, "stride": 2, "pad": 1, "shift": 1, "rounding": "FLOOR", "out": "INT8"},
        {"conv": 6, "k": 1, "w": "INT4", "act": "UINT4"},
        {"avgpool": 2, "stride": 1, "shift": 1, "out": "UINT4"},
        {"dense": 4, "w": "INT2"}]),  # pool5: UINT4 sums of 4 halved, clamped at 15
    # global: kernel = the 5 x 5 frame, 8-bit sums rounded half to even
    "global": ((5, 7, 7), "UINT8", [
        {"conv": 35, "k": 3, "w": "INT8", "act": "UINT8"},
        {"avgpool": 5, "shift": 5, "out": "UINT8"},
        {"dense": 3, "w": "INT4"}]),
}
