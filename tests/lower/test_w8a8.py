"""The 8-bit configs (configs/fmnist_*_w8a8*.yaml): their quantizers are Brevitas' w8a8 ones,
their hidden layers lower to requantizations by default (power-of-two factors in the
fixed-point variants), golden runs them and verify passes on the measured difference. Fast
tests shrink the models and use the digits dataset; the slow one trains a config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from flow import data as datasets
from flow import golden
from flow.ir import Requant
from flow.train import config as configs
from flow.train import models
from tests.conftest import ROOT

W8A8 = ("fmnist_mlp_w8a8", "fmnist_mlp_w8a8_fixed", "fmnist_cnn_w8a8", "fmnist_cnn_w8a8_fixed",
        "fmnist_mlp_w8a8_ptq", "fmnist_cnn_w8a8_ptq")


def small(name: str, epochs: int = 3) -> dict[str, Any]:
    """The config on the digits dataset (8x8), with small layers and few epochs."""
    cfg = configs.load(ROOT / "configs" / f"{name}.yaml")
    cfg["data"] = {"name": "digits"}
    cfg["model"]["hidden"] = [24]
    if cfg["model"].get("convs"):
        cfg["model"]["convs"] = [6, "pool", 8, "pool"]  # 8x8 -> 4x4 -> 2x2
    cfg["train"].update(epochs=epochs, float_epochs=epochs, calibration_batches=4, lr=0.01)
    return cfg


@pytest.mark.parametrize("name", W8A8)
def test_configs_are_w8a8(name: str) -> None:
    """Brevitas' quantizers as named: 8-bit weights per output channel with float scales
    (Int8WeightPerChannelFloat) or per tensor with a power-of-two scale (fixed point),
    8-bit activations with a statistics-initialised scale (Int8ActPerTensorFloat and its
    fixed-point kin; PTQ: calibrated Uint8ActPerTensorFloat), batch norm only with float
    scales."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear

    cfg = configs.load(ROOT / "configs" / f"{name}.yaml")
    assert cfg["data"] == {"name": "fashion-mnist"} and cfg["lower"]["activation"] == "auto"
    ptq = cfg["train"]["mode"] == "ptq"
    fixed = name.endswith("_fixed")
    net = models.build(cfg["model"], (1, 28, 28), 10, calibrate=ptq)
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 1, 28, 28))
    net.eval()
    weighted = [m for m in net.modules() if isinstance(m, QuantLinear | QuantConv2d)]
    for m in weighted:
        assert int(m.weight_quant.bit_width()) == 8
        scale = m.weight_quant.scale().detach().reshape(-1)
        assert len(scale) == (1 if fixed else m.weight.shape[0])
        assert torch.all(torch.log2(scale) == torch.round(torch.log2(scale))) == fixed
    acts = [m for m in net.modules() if isinstance(m, QuantIdentity)][1:]  # after the input
    assert len(acts) == len(weighted) - 1
    for m in acts:
        q = m.act_quant
        assert int(q.bit_width()) == 8 and bool(q.is_signed) != ptq
        if not ptq:  # a learned scale, initialised from statistics
            assert "ParameterFromRuntimeStats" in type(q.fused_activation_quant_proxy
                                                       .tensor_quant.scaling_impl).__name__
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    assert len(norms) == (0 if fixed else len(weighted))


@pytest.mark.parametrize("name", ["fmnist_mlp_w8a8", "fmnist_cnn_w8a8_fixed"])
def test_lowering_golden_and_verify(name: str, tmp_path: Path) -> None:
    """Untrained (statistics-initialised) small versions through export and compile, forced
    to requantize (auto keeps what it cannot prove exact): every hidden weighted layer
    requantized, power-of-two factors exactly in the fixed-point variant, each listed
    inexact unless proven equal to the float graph; golden runs the test split and verify
    passes, every difference measured."""
    from flow.export import compile_onnx, export_qonnx
    from flow.lower import lower
    from flow.verify import verify

    cfg = small(name)
    ds = datasets.load(cfg["data"], 0)
    torch.manual_seed(0)
    net = models.build(cfg["model"], ds.input_shape, ds.classes)
    net.train()
    with torch.no_grad():
        for b in range(3):
            net(torch.from_numpy(ds.x_train[b * 64:(b + 1) * 64]))
    path = export_qonnx(net, torch.from_numpy(ds.x_train[:1]), tmp_path / "m.onnx")
    ir = compile_onnx(path, tmp_path / "b", {"target_cycles": 256}, cfg["data"],
                      activation="requant")
    hidden = [lay for lay in ir.layers if lay.weighted][:-1]
    assert hidden and all(isinstance(lay.activation, Requant) for lay in hidden)
    fixed = name.endswith("_fixed")
    for lay in hidden:
        assert isinstance(lay.activation, Requant)
        assert bool(np.all(lay.activation.multiplier == 2**30)) == fixed, lay.name
        meta = ir.meta["requantized_layers"][lay.name]
        assert meta["power_of_two"] == fixed
        assert (lay.name in ir.meta["inexact_layers"]) == (
            not meta["proven_exact"] or not meta["float_product_exact"])
    out = golden.run(ir, ds.x_test[:30]).reshape(30, -1)
    assert out.shape == (30, 10) and np.isfinite(out).all()
    r = verify(tmp_path / "b", limit=30)
    assert r["passed"], r["agreement"]
    measured = r["requantization"]["layers"]
    assert set(measured) == {lay.name for lay in hidden}
    for m in measured.values():
        assert m["power_of_two"] == fixed and m["max_step_difference"] <= m["step_bound"] == 1
        if fixed:  # rounding half to even: the float graph's own function
            assert m["differing_outputs"] == 0
    assert r["requantization"]["argmax_equal"] == r["agreement"]["qonnx_executor"]["argmax_equal"]
    # the rule: under auto no int8 layer keeps 255 thresholds unless proven unequal
    auto = lower(path, activation="auto")
    assert all(isinstance(lay.activation, Requant)
               for lay in [la for la in auto.layers if la.weighted][:-1])
    assert "kept_thresholds" not in auto.meta


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fmnist_mlp_w8a8_ptq", "fmnist_cnn_w8a8"])
def test_config_trains_exports_and_checks(name: str, tmp_path: Path) -> None:
    """`qflow train`, `export` and `check` on a small version of the config: golden equals
    the float graph on every sample, every backend equals golden."""
    from flow.cli import main

    cfg = small(name, epochs=15)  # 1,437 training images: 12 steps an epoch
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    build = tmp_path / "b"
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(build)]) == 0
    train = json.loads((build / "train.json").read_text())
    assert train["test_accuracy"] > 0.5
    if cfg["train"]["mode"] == "ptq":
        assert train["epochs"] == [] and train["float_test_accuracy"] > 0.5
    assert main(["export", str(build)]) == 0
    assert main(["check", str(build), "--limit", "40"]) == 0
    checks = json.loads((build / "check.subset.json").read_text())["checks"]  # --limit
    assert checks["verify"]["status"] in ("equal", "explained")
    assert all(checks[k]["status"] == "equal" for k in ("sim", "hls", "firmware"))
    v = json.loads((build / "verify.subset.json").read_text())
    # auto: a layer is requantized only where proven equal to the float graph, so every
    # layer's codes agree with the executor; the float logits differ by float32 rounding only
    executor = v["agreement"]["qonnx_executor"]
    assert v["passed"] and executor["rounding"]["unexplained_samples"] == [], executor
    assert executor["argmax_equal"] == 40
    assert v["agreement"]["brevitas_forward"]["explained"]
    assert abs(v["accuracy"]["golden"] - v["accuracy"]["brevitas_forward"]) <= 0.05
