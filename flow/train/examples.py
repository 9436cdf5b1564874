"""Real third-party models for tests and benchmarks: Brevitas' own BNN-PYNQ models (FINN's
TFC/SFC/LFC MLPs and the CNV convolutional network), with random weights and randomized
batch-norm statistics so that every threshold differs from the defaults."""

from __future__ import annotations

import torch
from torch import nn

BNN_PYNQ = {"tfc-w1a1": "tfc_1w1a", "tfc-w1a2": "tfc_1w2a", "tfc-w2a2": "tfc_2w2a",
            "sfc-w1a1": "sfc_1w1a", "sfc-w1a2": "sfc_1w2a", "sfc-w2a2": "sfc_2w2a",
            "lfc-w1a1": "lfc_1w1a", "lfc-w1a2": "lfc_1w2a",
            "cnv-w1a1": "cnv_1w1a", "cnv-w1a2": "cnv_1w2a", "cnv-w2a2": "cnv_2w2a"}


def input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) that BNN-PYNQ model `name` takes: CIFAR-10 for CNV, MNIST otherwise."""
    return (3, 32, 32) if name.startswith("cnv") else (1, 28, 28)


def bnn_pynq(name: str, seed: int = 0) -> nn.Module:
    """brevitas_examples.bnn_pynq model `name` (e.g. "tfc-w1a1"), eval mode, input of
    `input_shape(name)`."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    if name not in BNN_PYNQ:
        raise ValueError(f"unknown BNN-PYNQ model {name!r}; choose from {', '.join(BNN_PYNQ)}")
    torch.manual_seed(seed)
    model, _ = model_with_cfg(BNN_PYNQ[name], pretrained=False)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None  # track_running_stats
                m.running_mean.copy_(torch.randn(n) * 4)
                m.running_var.copy_(torch.rand(n) * 20 + 1)
                m.weight.copy_(torch.randn(n))  # negative gammas flip channels too
                m.bias.copy_(torch.randn(n))
    return model.eval()
