"""The low-precision training methods of seeds 002-003 (DoReFa-Net, WAGE, stochastic rounding
of fixed-point weights): each quantizer's forward and backward against closed forms on small
tensors, a short training run per method, and export + lowering + golden == qonnx executor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from brevitas.nn import QuantIdentity, QuantLinear

from flow.train import lowprec, models
from flow.train.config import ConfigError, validate
from flow.train.quantizers import act_quant, weight_quant

W = torch.tensor([[0.9, -0.2, 0.05, -1.7], [0.3, 0.0, -0.6, 2.5]])


def dorefa_layer(bits: int, po2: bool) -> QuantLinear:
    spec = {"quant": "dorefa", "bits": bits, "po2": po2}
    net = models.QuantNet({"hidden": [2], "weight": spec, "act": {"quant": "dorefa", "bits": 2}},
                          (4,), 2)
    layer = net.features[1]
    with torch.no_grad():
        layer.parametrizations.weight.original.copy_(W)
    return layer


@pytest.mark.parametrize("bits,po2", [(1, True), (2, True), (2, False), (3, True)])
def test_dorefa_weights_closed_form(bits: int, po2: bool) -> None:
    layer = dorefa_layer(bits, po2)
    n = 2**bits - 1
    t = np.tanh(W.double().numpy())
    r = t / (2 * np.abs(t).max()) + 0.5
    paper = 2 * np.round(r * n) / n - 1  # the paper's levels on [-1, 1]
    step = 2.0**-bits if po2 else 1 / n
    qt = layer.quant_weight()
    assert float(qt.scale) == np.float32(step) and int(qt.bit_width) == bits + 1
    assert np.array_equal(torch.round(qt.value / qt.scale).detach().numpy(), np.round(paper * n))
    assert np.allclose(qt.value.detach().numpy(), paper * n * step, atol=1e-7)
    # backward: straight through the round, tanh and the max differentiated as functions
    w = W.clone().double().requires_grad_(True)
    tt = torch.tanh(w)
    ref = (2 * n * (tt / (2 * tt.abs().max()) + 0.5) * step).sum()
    ref.backward()
    qt.value.sum().backward()
    assert torch.allclose(layer.parametrizations.weight.original.grad.double(), w.grad, atol=1e-6)


@pytest.mark.parametrize("po2", [True, False])
def test_dorefa_activation_closed_form(po2: bool) -> None:
    act = QuantIdentity(act_quant=act_quant({"quant": "dorefa", "bits": 2, "po2": po2}),
                        return_quant_tensor=True)
    x = torch.tensor([-0.4, 0.1, 0.2, 0.5, 0.9, 1.0, 1.6], requires_grad=True)
    y = act(x)
    top = 0.75 if po2 else 1.0  # po2: steps of 1/4 instead of 1/3
    ref = np.round(np.clip(x.detach().numpy(), 0, top) / top * 3) / 3 * top
    assert np.allclose(y.value.detach().numpy(), ref, atol=1e-7)
    y.value.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, float(not po2), float(not po2), 0.0]


def test_dorefa_gradient_closed_form() -> None:
    g = torch.tensor([[0.4, -0.1, 0.0, -0.8], [3.0, 1.0, -2.0, 0.2]])
    bits = 2
    noise = torch.tensor([[0.0, 0.3, -0.49, 0.1], [0.2, -0.2, 0.0, 0.45]])
    out = lowprec.dorefa_grad(g, bits, noise)
    m = g.abs().amax(1, keepdim=True).numpy()  # per sample
    x = np.clip(g.numpy() / (2 * m) + 0.5 + noise.numpy() / 3, 0, 1)
    assert np.allclose(out.numpy(), 2 * m * (np.round(3 * x) / 3 - 0.5), atol=1e-6)
    # the backward quantizer: identity forward, f_G backward with its uniform noise
    q = lowprec.BackwardQuant("dorefa", bits).train()
    x_in = torch.zeros(2, 4, requires_grad=True)
    torch.manual_seed(5)
    y = q(x_in)
    assert torch.equal(y, x_in)
    y.backward(g)
    torch.manual_seed(5)
    expect = lowprec.dorefa_grad(g, bits, torch.rand_like(g) - 0.5)
    assert torch.equal(x_in.grad, expect)
    levels = torch.unique(torch.round(x_in.grad / (2 * torch.tensor(m)) * 3 * 2))
    assert set(levels.tolist()) <= {-3.0, -1.0, 1.0, 3.0}  # 2^k levels per sample


def test_wage_weights_activations_errors_closed_form() -> None:
    layer = QuantLinear(4, 2, bias=False, weight_quant=weight_quant({"quant": "wage", "bits": 2}))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, 0.3, -0.9, 0.26], [0.8, -0.1, 0.25, -0.24]]))
    qt = layer.quant_weight()
    assert qt.value.tolist() == [[0.0, 0.5, -0.5, 0.5], [0.5, 0.0, 0.0, -0.0]]
    qt.value.sum().backward()
    assert torch.all(layer.weight.grad == 1)  # identity STE, clip included
    act = QuantIdentity(act_quant=act_quant({"quant": "wage", "bits": 8}), return_quant_tensor=True)
    x = torch.tensor([-2.0, 0.3, 0.5, 0.9999, 1.5], requires_grad=True)
    y = act(x)
    assert float(y.scale) == 2.0**-7
    assert y.value.tolist() == [-127 / 128, 38 / 128, 64 / 128, 127 / 128, 127 / 128]
    y.value.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]  # clip keeps its derivative
    e = torch.tensor([0.3, -0.05, 0.011, 0.0])
    # max 0.3 -> Shift 0.25; e / 0.25 = [1.2, -0.2, 0.044, 0] -> 8-bit grid, clipped at 127/128
    assert lowprec.wage_error(e, 8).tolist() == [127 / 128, -26 / 128, 6 / 128, 0.0]
    assert lowprec.wage_alpha(784, 2) == 8.0 and lowprec.wage_alpha(16, 2) == 1.0


def test_wage_update_is_stochastic_rounding_of_scaled_gradient() -> None:
    g = torch.tensor([0.3, -0.6, 0.05, 0.0])
    gen = torch.Generator().manual_seed(3)
    dw = lowprec.wage_update(g, 2.0, 8, gen)
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(4, generator=gen)
    gs = 2.0 * g / 0.5  # Shift(0.6) = 0.5
    expect = torch.sign(gs) * (torch.floor(gs.abs()) + (u < gs.abs() - torch.floor(gs.abs())).float())
    assert torch.equal(dw, expect / 128)
    mean = torch.stack([lowprec.wage_update(g, 2.0, 8) for _ in range(4000)]).mean(0)
    assert torch.allclose(mean * 128, gs, atol=0.05)  # unbiased
    p = torch.nn.Parameter(torch.tensor([0.99, -0.5]))
    p.grad = torch.tensor([-1.0, 0.25])
    lowprec.WageSGD([p], lr=4.0, grad_bits=8).step()
    assert p.tolist() == [127 / 128, -0.5 - 1 / 128]  # clipped to 1 - 2^-7; 4 * 0.25 = 1 step


def test_fixed_point_rounding_modes() -> None:
    x = torch.tensor([0.30, 0.3125, -0.26, 5.0, -5.0, 0.28125])
    # <IL, FL> = <3, 3>: eps 1/8, range [-4, 4 - 1/8]; nearest rounds ties down (Gupta)
    assert lowprec.round_fixed(x, 6, 3, "nearest").tolist() == [0.25, 0.25, -0.25, 3.875, -4.0, 0.25]
    draws = torch.stack([lowprec.round_fixed(x[:3], 6, 3, "stochastic") for _ in range(4000)])
    assert set(torch.unique(draws[:, 0]).tolist()) == {0.25, 0.375}
    assert torch.allclose(draws.mean(0), x[:3], atol=0.01)  # E[Round(x)] = x
    layer = QuantLinear(2, 1, bias=False, weight_quant=weight_quant(
        {"quant": "fixed", "bits": 6, "frac_bits": 3}))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.875, -4.0]]))
    qt = layer.quant_weight()
    assert float(qt.scale) == 0.125 and torch.equal(qt.value, layer.weight)


def test_round_to_nearest_stalls_where_stochastic_rounding_learns() -> None:
    """A weight 0 pulled towards 1 by updates of 1/4 of a step: nearest never moves it."""
    w = {mode: torch.zeros(1) for mode in ("nearest", "stochastic")}
    for _ in range(200):
        for mode in w:
            w[mode] = lowprec.round_fixed(w[mode] + 0.25 * 2.0**-4 * torch.sign(1 - w[mode]),
                                          8, 4, mode)  # type: ignore[arg-type]
    assert w["nearest"].item() == 0.0 and w["stochastic"].item() > 0.5


@pytest.mark.parametrize("bad,message", [
    ({"weight": {"quant": "fixed", "bits": 8}}, "frac_bits: fixed-point weights need"),
    ({"weight": {"quant": "int", "bits": 4, "frac_bits": 2}}, "only fixed weights take frac_bits"),
    ({"weight": {"quant": "wage"}, "act": {"quant": "uint"}}, "WAGE quantizes weights and act"),
    ({"grad": {"quant": "wage"}}, "WAGE's error quantizer belongs"),
    ({"grad": {"quant": "dorefa", "bits": 9}}, "less than or equal to 8"),
    ({"grad": {"quant": "dorefa", "bitz": 4}}, "unknown key"),
])
def test_config_checks_the_new_keys(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate({"model": bad}, Path("c.yaml"))


def test_wage_config_defaults_and_optimizer() -> None:
    model = {"weight": {"quant": "wage"}, "act": {"quant": "wage"}}
    with pytest.raises(ConfigError, match="optimizer wage"):
        validate({"model": model}, Path("c.yaml"))
    cfg = validate({"model": model, "train": {"optimizer": "wage"}}, Path("c.yaml"))
    assert cfg["model"]["grad"] == {"quant": "wage", "bits": 8}


METHODS = {
    "dorefa": ({"weight": {"quant": "dorefa", "bits": 2}, "act": {"quant": "dorefa", "bits": 2},
                "grad": {"quant": "dorefa", "bits": 6}}, {"lr": 0.02}),
    "wage": ({"weight": {"quant": "wage"}, "act": {"quant": "wage"}},
             {"optimizer": "wage", "lr": 8.0}),
    "sr": ({"weight": {"quant": "fixed", "bits": 8, "frac_bits": 5, "rounding": "stochastic"},
            "act": {"quant": "uint", "bits": 4}}, {"optimizer": "sgd", "lr": 0.1}),
}


def method_build(tmp_path: Path, method: str, epochs: int = 6) -> Path:
    from flow.train.trainer import train

    model, t = METHODS[method]
    cfg = {"name": f"digits_{method}", "data": {"name": "digits"},
           "model": {"hidden": [32], **model}, "train": {"epochs": epochs, **t},
           "hardware": {"target_cycles": 64}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    train(tmp_path / "c.yaml", tmp_path / method)
    return tmp_path / method


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_trains_exports_and_lowers_exactly(method: str, tmp_path: Path) -> None:
    import json

    from flow.export import export_build
    from flow.verify import verify

    build = method_build(tmp_path, method)
    r = json.loads((build / "train.json").read_text())
    assert r["test_accuracy"] > 0.8, r["test_accuracy"]
    ir = export_build(build)
    v = verify(build, limit=120)
    assert v["all_equal"], v["agreement"]
    assert set(v["agreement"]) >= {"qonnx_executor", "brevitas_forward"}
    w_types = [str(layer.weight_dtype) for layer in ir.layers]
    expect = {"dorefa": "INT3", "wage": "TERNARY", "sr": "INT8"}[method]
    assert all(expect in t for t in w_types), w_types
    if method == "dorefa":  # the odd codes of 2-bit DoReFa weights
        codes = np.unique(np.concatenate([np.unique(layer.weights) for layer in ir.layers]))
        assert set(np.abs(codes).tolist()) <= {1, 3}
