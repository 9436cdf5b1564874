"""Residual networks of brevitas_examples' QuantBasicBlock (flow.train.residual) with
calibrated activation scales and random batch norms, exported to QONNX; and a synthetic
graph IR whose joins read inputs of different types and signed weights, one of them the
model's input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flow import synthetic
from flow.datatypes import dtype
from flow.ir import MODEL_INPUT, AddLayer, Model, Thresholds
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


def random_add(rng: np.random.Generator, name: str, shape: tuple[int, int, int],
               a_t: str, b_t: str, weights: tuple[int, int], out_t: str) -> AddLayer:
    """An add of exact bounds whose thresholds lie anywhere in them."""
    add = AddLayer(name=name, source=f"synthetic {name}", in_shape=shape, out_shape=shape,
                   input_dtype=dtype(a_t), other_dtype=dtype(b_t), input_weights=weights,
                   acc_min=0, acc_max=0, activation=None)
    lo, hi = add.worst_case()
    base, step, count = synthetic.activation_for(dtype(out_t))
    values = np.sort(rng.integers(lo, hi + 2, size=(shape[2], count)), axis=1)
    return dataclasses.replace(add, acc_min=lo, acc_max=hi, activation=Thresholds(
        values=values, base=base, step=step, out_dtype=dtype(out_t)))


def synthetic_graph(seed: int) -> Model:
    """conv0 -> add0(conv0, input) -> conv1 -> add1(conv1, add0) -> dense2: the model's input
    and add0 each read by two layers, the adds' inputs of different types or weights."""
    rng = np.random.default_rng(seed)
    shape = (5, 6, 4)  # H, W, C
    chain = synthetic.random_cnn_model((4, 5, 6), "UINT4", [
        {"conv": 4, "k": 3, "pad": 1, "w": "INT3", "act": "UINT3"},
        {"conv": 4, "k": 3, "pad": 1, "w": "INT2", "act": "UINT3"},
        {"dense": 5, "w": "INT3"}], seed=seed, name=f"graph{seed}")
    conv0, conv1, dense2 = chain.layers
    add0 = random_add(rng, "add0", shape, "UINT3", "UINT4", (2, -1), "UINT3")
    add1 = random_add(rng, "add1", shape, "UINT3", "UINT3", (1, -3), "UINT3")
    model = dataclasses.replace(chain, layers=[conv0, add0, conv1, add1, dense2], inputs={
        "add0": ("conv0", MODEL_INPUT), "conv1": ("add0",), "add1": ("conv1", "add0"),
        "dense2": ("add1",)})
    model.validate(model.name)
    return model
