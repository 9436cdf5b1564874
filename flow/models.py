"""The model zoo: Brevitas MLPs of any depth, width and bit width, FINN's TFC/SFC/LFC among them.

Layer pattern (FINN's BNN-PYNQ FC): input quantizer, then per hidden layer
QuantLinear (no bias) -> BatchNorm1d -> activation quantizer -> dropout, then a last
QuantLinear and a per-class affine BatchNorm1d that scales the logits for the loss.
"""

from __future__ import annotations

from typing import Any

import torch
from brevitas.nn import QuantIdentity, QuantLinear
from torch import nn

from flow.quantizers import act_quant, weight_quant

# FINN's MLP topologies (BNN-PYNQ / finn-examples): hidden widths
TOPOLOGIES = {"tfc": [64, 64, 64], "sfc": [256, 256, 256], "lfc": [1024, 1024, 1024]}


def hidden_widths(spec: dict[str, Any]) -> list[int]:
    topo = spec.get("topology")
    if topo is not None:
        if topo not in TOPOLOGIES:
            raise ValueError(f"model.topology: {topo!r} is not one of {', '.join(TOPOLOGIES)}")
        return list(TOPOLOGIES[topo])
    hidden = spec.get("hidden", [64, 64])
    if not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ValueError(f"model.hidden: expected a list of positive widths, got {hidden!r}")
    return list(hidden)


class QuantMLP(nn.Module):
    def __init__(self, spec: dict[str, Any], input_shape: tuple[int, ...], classes: int,
                 quantized: bool = True, calibrate: bool = False) -> None:
        super().__init__()
        in_spec = spec.get("input", {"quant": "uint", "bits": 8, "max_val": 1.0})
        w_spec = spec.get("weight", {"quant": "binary"})
        a_spec = spec.get("act", {"quant": "binary"})
        last_spec = spec.get("last_weight", w_spec)
        dropout = float(spec.get("dropout", 0.0))
        # bipolar inputs are centred as in BNN-PYNQ: x in [0, 1] -> 2x - 1 in [-1, 1]
        self.center = in_spec.get("quant") in ("binary", "int")
        features = int(torch.tensor(input_shape).prod())

        def act(s: dict[str, Any], where: str) -> nn.Module:
            if quantized:
                return QuantIdentity(act_quant=act_quant(s, where, calibrate), return_quant_tensor=False)
            return nn.ReLU() if s.get("quant") in ("uint", "lsq", "int_asym") else nn.Hardtanh()

        def linear(n_in: int, n_out: int, s: dict[str, Any], where: str) -> nn.Module:
            wq = weight_quant(s, where) if quantized else None
            return QuantLinear(n_in, n_out, bias=False, weight_quant=wq)

        layers: list[nn.Module] = [act(in_spec, "model.input") if quantized else nn.Identity()]
        for width in hidden_widths(spec):
            layers += [linear(features, width, w_spec, "model.weight"), nn.BatchNorm1d(width),
                       act(a_spec, "model.act")]
            if dropout:
                layers.append(nn.Dropout(dropout))
            features = width
        layers += [linear(features, classes, last_spec, "model.last_weight"),
                   nn.BatchNorm1d(classes)]
        self.features = nn.Sequential(*layers)
        self.binary_weights = quantized and str(w_spec.get("quant", "")).startswith("binary")
        if self.binary_weights:
            for m in self.modules():
                if isinstance(m, QuantLinear):
                    nn.init.uniform_(m.weight, -1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if self.center:
            x = 2.0 * x - 1.0
        return self.features(x)

    def clip_weights(self) -> None:
        """Keep latent binary weights in [-1, 1] (BinaryConnect), where the STE passes gradient."""
        if not self.binary_weights:
            return
        for m in self.modules():
            if isinstance(m, QuantLinear):
                m.weight.data.clamp_(-1.0, 1.0)


def build(spec: dict[str, Any], input_shape: tuple[int, ...], classes: int,
          quantized: bool = True, calibrate: bool = False) -> QuantMLP:
    arch = spec.get("arch", "mlp")
    if arch != "mlp":
        raise ValueError(f"model.arch: {arch!r} is not supported (qflow builds MLPs: 'mlp')")
    return QuantMLP(spec, input_shape, classes, quantized, calibrate)
