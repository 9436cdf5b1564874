"""Each quantizer option of the course material: forward values, gradients, export type."""

from __future__ import annotations

import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear

from flow.train.quantizers import ACT_OPTIONS, WEIGHT_OPTIONS, QuantConfigError, act_quant, weight_quant


def qlinear(spec: dict, n_in: int = 16, n_out: int = 8, seed: int = 0) -> QuantLinear:
    torch.manual_seed(seed)
    layer = QuantLinear(n_in, n_out, bias=False, weight_quant=weight_quant(spec))
    torch.nn.init.uniform_(layer.weight, -1.5, 1.5)
    return layer


def qweight(layer: QuantLinear) -> tuple[torch.Tensor, torch.Tensor]:
    qt = layer.quant_weight()
    return qt.value.detach(), qt.scale.detach()


def is_po2(s: torch.Tensor) -> bool:
    return bool(torch.all(torch.log2(s) == torch.round(torch.log2(s))))


@pytest.mark.parametrize("kind", ["binary", "binary_ste", "binary_stochastic"])
def test_binary_weights_are_pm1(kind: str) -> None:
    layer = qlinear({"quant": kind}).eval()
    w, s = qweight(layer)
    assert set(torch.unique(w).tolist()) <= {-1.0, 1.0}
    assert torch.equal(w, torch.where(layer.weight >= 0, 1.0, -1.0))


def test_clipped_ste_zeroes_gradient_outside_window() -> None:
    layer = qlinear({"quant": "binary"})
    layer.quant_weight().value.sum().backward()
    outside = layer.weight.detach().abs() > 1
    assert outside.any() and (~outside).any()
    assert torch.all(layer.weight.grad[outside] == 0)
    assert torch.all(layer.weight.grad[~outside] == 1)


def test_identity_ste_passes_gradient_everywhere() -> None:
    layer = qlinear({"quant": "binary_ste"})
    layer.quant_weight().value.sum().backward()
    assert torch.all(layer.weight.grad == 1)


def test_stochastic_binarization_follows_hard_sigmoid() -> None:
    layer = qlinear({"quant": "binary_stochastic"}, n_in=1, n_out=1)
    layer.train()
    with torch.no_grad():
        layer.weight.fill_(0.5)
    draws = torch.stack([layer.quant_weight().value for _ in range(4000)])
    p_plus = (draws > 0).float().mean().item()
    assert abs(p_plus - 0.75) < 0.03  # hard_sigmoid(0.5) = (0.5 + 1) / 2
    layer.eval()
    assert torch.all(torch.stack([layer.quant_weight().value for _ in range(10)]) == 1)


def test_xnor_scale_is_per_channel_mean_abs() -> None:
    layer = qlinear({"quant": "binary_xnor"}).eval()
    w, s = qweight(layer)
    expect = layer.weight.detach().clamp(-1e9, 1e9).abs().mean(dim=1, keepdim=True)
    assert s.shape == (8, 1)
    assert torch.allclose(s, expect, rtol=1e-5)
    assert torch.allclose(w.abs(), s.expand_as(w))


def test_ternary_has_three_levels() -> None:
    w, s = qweight(qlinear({"quant": "ternary"}).eval())
    assert set(torch.unique(torch.round(w / s)).tolist()) == {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("per_channel", [False, True])
def test_int_symmetric(bits: int, per_channel: bool) -> None:
    w, s = qweight(qlinear({"quant": "int", "bits": bits, "per_channel": per_channel}).eval())
    q = torch.round(w / s)
    assert q.min() >= -(2 ** (bits - 1)) + 1 and q.max() <= 2 ** (bits - 1) - 1  # narrow
    assert s.numel() == (8 if per_channel else 1)
    assert is_po2(s)


def test_int_asymmetric_has_zero_point() -> None:
    layer = qlinear({"quant": "int_asym", "bits": 4}).eval()
    qt = layer.quant_weight()
    assert qt.zero_point.abs().max() > 0
    codes = torch.round(qt.value / qt.scale + qt.zero_point)
    assert codes.min() >= 0 and codes.max() <= 15


def test_lsq_learns_the_step_size() -> None:
    layer = qlinear({"quant": "lsq", "bits": 4})
    params = [n for n, p in layer.named_parameters() if "scaling" in n]
    assert params, "LSQ needs a learnable scale"
    layer.train()
    layer(torch.randn(4, 16)).pow(2).sum().backward()
    grads = [p.grad for n, p in layer.named_parameters() if "scaling" in n]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_binary_activation_hardtanh_ste() -> None:
    act = QuantIdentity(act_quant=act_quant({"quant": "binary"}))
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.7], requires_grad=True)
    y = act(x)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("kind,bits", [("uint", 2), ("uint", 4), ("int", 3), ("int_asym", 4),
                                        ("lsq", 4)])
def test_multibit_activations(kind: str, bits: int) -> None:
    act = QuantIdentity(act_quant=act_quant({"quant": kind, "bits": bits}),
                        return_quant_tensor=True)
    act.train()
    for _ in range(5):
        act(torch.randn(64) * 2)
    act.eval()
    qt = act(torch.linspace(-3, 3, 101))
    codes = torch.round(qt.value / qt.scale + qt.zero_point)
    assert len(torch.unique(codes)) <= 2**bits
    assert len(torch.unique(codes)) >= 2 ** (bits - 1)


def test_ptq_calibration_sets_activation_scale() -> None:
    from brevitas.graph.calibrate import calibration_mode

    act = QuantIdentity(act_quant=act_quant({"quant": "uint", "bits": 4}, calibrate=True),
                        return_quant_tensor=True)
    with torch.no_grad(), calibration_mode(act):
        for _ in range(10):
            act(torch.rand(256) * 6.0)
    act.eval()
    scale = act(torch.rand(4)).scale.item()
    assert 4.0 / 15 < scale < 8.0 / 15  # max of the data (about 6) over 15 levels


def test_options_are_listed_and_checked() -> None:
    assert len(WEIGHT_OPTIONS) == 11 and len(ACT_OPTIONS) == 8  # with DoReFa, WAGE, fixed
    with pytest.raises(QuantConfigError, match="model.weight.quant"):
        weight_quant({"quant": "fp4"})
    with pytest.raises(QuantConfigError, match="bits"):
        act_quant({"quant": "uint", "bits": 9})
