"""The low-precision training methods of the course material (seeds 002-003), as the pieces
that live beside the Brevitas quantizers (flow/train/quantizers.py) during training only:

- DoReFa-Net (Zhou et al. 2016): the tanh weight normalization (a parametrization of the
  layer's weight, folded into a constant at export) and the k-bit gradient quantizer
  f_G(dr) = 2 max0|dr| [quantize_k(dr / (2 max0|dr|) + 1/2 + N(k)) - 1/2], N(k) uniform
  noise of one step's width, max0 per sample (over every axis but the batch), in the
  backward pass of each weighted layer's output.
- WAGE (Wu et al. 2018): Q(x, k) = clip(s round(x / s), -1 + s, 1 - s), s = 2^(1-k);
  errors Q(e / Shift(max|e|), k_E) in the backward pass; weight updates
  dW = s_G sgn(g_s) (floor|g_s| + Bernoulli(frac|g_s|)), g_s = lr g / Shift(max|g|), onto the
  k_G-bit weight grid; constant shift scaling 1/alpha in place of batch norm.
- Stochastic rounding of fixed-point weights (Gupta et al. 2015): after every update the
  stored weights are Convert(w, <IL, FL>), rounded to nearest or stochastically
  (E[Round(x)] = x).

Everything here is the identity (or absent) in evaluation mode, so export sees only the
Brevitas quantizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import Tensor, nn

Rounding = Literal["stochastic", "nearest"]
WAGE_BETA = 1.5  # L_min = beta * sigma(k_W), the paper's weight-range floor


def quantize_k(x: Tensor, bits: int) -> Tensor:
    """DoReFa's quantize_k on [0, 1]: round((2^k - 1) x) / (2^k - 1)."""
    n = 2**bits - 1
    return torch.round(x * n) / n


def dorefa_step(bits: int, po2: bool) -> float:
    """The value of one odd code of DoReFa's k-bit weights (and one activation step):
    1/(2^k - 1) in the paper, 2^-k with power-of-two scales."""
    return 2.0**-bits if po2 else 1.0 / (2**bits - 1)


def dorefa_weight(w: Tensor, bits: int, step: float) -> Tensor:
    """DoReFa's k-bit weights: (2 quantize_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1), as odd
    codes (2^k - 1) times `step`; straight-through round, tanh and max differentiated."""
    t = torch.tanh(w)
    r = t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5
    n = 2**bits - 1
    codes = 2 * (r * n + (torch.round(r * n) - r * n).detach()) - n  # odd integers, STE
    return codes * step


class DoReFaWeight(nn.Module):
    """Parametrization of a layer's weight (torch.nn.utils.parametrize): the weight the layer
    and its Brevitas quantizer see is dorefa_weight(latent)."""

    def __init__(self, bits: int, step: float) -> None:
        super().__init__()
        self.bits, self.step = bits, step

    def forward(self, w: Tensor) -> Tensor:
        return dorefa_weight(w, self.bits, self.step)


def dorefa_grad(g: Tensor, bits: int, noise: Tensor) -> Tensor:
    """DoReFa's f_G: `noise` in [-1/2, 1/2) (one step's width after scaling), max per sample;
    clipped to [0, 1] before quantize_k as in the authors' code."""
    dims = tuple(range(1, g.dim()))
    m = g.abs().amax(dim=dims, keepdim=True) if dims else g.abs().max()
    m = torch.where(m > 0, m, torch.ones_like(m))
    x = g / (2 * m) + 0.5 + noise / (2**bits - 1)
    return 2 * m * (quantize_k(x.clamp(0.0, 1.0), bits) - 0.5)


class _DoReFaGradFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, bits: int) -> Tensor:
        ctx.bits = bits
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        return dorefa_grad(g, ctx.bits, torch.rand_like(g) - 0.5), None


def shift(x: Tensor) -> Tensor:
    """WAGE's Shift(x) = 2^round(log2 x): the nearest power of two."""
    return torch.exp2(torch.round(torch.log2(x)))


def wage_sigma(bits: int) -> float:
    """WAGE's sigma(k) = 2^(1 - k): the step of a k-bit value on (-1, 1)."""
    return 2.0 ** (1 - bits)


def wage_q(x: Tensor, bits: int) -> Tensor:
    """WAGE's Q(x, k) = clip(sigma round(x / sigma), -1 + sigma, 1 - sigma)."""
    s = wage_sigma(bits)
    return (torch.round(x / s) * s).clamp(-1 + s, 1 - s)


def wage_error(e: Tensor, bits: int) -> Tensor:
    """WAGE's Q_E: the error scaled by the power of two nearest its largest magnitude."""
    m = e.abs().max()
    return wage_q(e / shift(m), bits) if m > 0 else e


class _WageErrorFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, bits: int) -> Tensor:
        ctx.bits = bits
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, e: Tensor) -> tuple[Tensor, None]:
        return wage_error(e, ctx.bits), None


class BackwardQuant(nn.Module):
    """Identity forward; quantizes the gradient flowing back through it while training
    (DoReFa's f_G or WAGE's Q_E). Absent from the exported graph (evaluation: identity)."""

    FUNCTIONS = {"dorefa": _DoReFaGradFn, "wage": _WageErrorFn}

    def __init__(self, method: str, bits: int) -> None:
        super().__init__()
        if method not in self.FUNCTIONS:
            raise ValueError(f"model.grad.quant: {method!r} is not one of {', '.join(self.FUNCTIONS)}")
        self.method, self.bits = method, bits

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return x
        out: Tensor = self.FUNCTIONS[self.method].apply(x, self.bits)
        return out

    def extra_repr(self) -> str:
        return f"{self.method}, bits={self.bits}"


def wage_alpha(fan_in: int, weight_bits: int) -> float:
    """WAGE's layer scale alpha = max(Shift(L_min / sqrt(6 / fan_in)), 1), a power of two."""
    l_min = WAGE_BETA * wage_sigma(weight_bits)
    return max(2.0 ** round(math.log2(l_min / math.sqrt(6.0 / fan_in))), 1.0)


def wage_init_(w: Tensor, fan_in: int, weight_bits: int, grad_bits: int) -> None:
    """WAGE's initialization U(-L, L), L = max(L_min, sqrt(6 / fan_in)), on the k_G grid."""
    limit = max(WAGE_BETA * wage_sigma(weight_bits), math.sqrt(6.0 / fan_in))
    with torch.no_grad():
        w.uniform_(-limit, limit)
        w.copy_(wage_q(w, grad_bits))


class ShiftScale(nn.Module):
    """WAGE's constant scaling in place of batch norm: multiply by 1/alpha (a power of two),
    exported as one Mul."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.factor: Tensor
        self.register_buffer("factor", torch.tensor(1.0 / alpha))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def stochastic_round(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """floor(x) + Bernoulli(x - floor(x)): unbiased, E = x."""
    f = torch.floor(x)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return f + (u < x - f).to(x.dtype)


def round_fixed(x: Tensor, word_bits: int, frac_bits: int, rounding: Rounding,
                generator: torch.Generator | None = None) -> Tensor:
    """Gupta et al.'s Convert(x, <IL, FL>): round to a multiple of eps = 2^-FL (to nearest,
    ties down as in the paper, or stochastically), saturate to [-2^(IL-1), 2^(IL-1) - eps]."""
    eps = 2.0**-frac_bits
    y = x / eps
    codes = stochastic_round(y, generator) if rounding == "stochastic" else torch.ceil(y - 0.5)
    return codes.clamp(-(2 ** (word_bits - 1)), 2 ** (word_bits - 1) - 1) * eps


def wage_update(g: Tensor, lr: float, grad_bits: int, generator: torch.Generator | None = None
                ) -> Tensor:
    """WAGE's dW = sigma(k_G) sgn(g_s) (floor|g_s| + Bernoulli(|g_s| - floor|g_s|)),
    g_s = lr g / Shift(max|g|)."""
    m = g.abs().max()
    if m == 0:
        return torch.zeros_like(g)
    gs = lr * g / shift(m)
    return wage_sigma(grad_bits) * torch.sign(gs) * stochastic_round(gs.abs(), generator)


class WageSGD(torch.optim.Optimizer):
    """WAGE's weight update: W <- clip(W - dW, -1 + sigma(k_G), 1 - sigma(k_G)); the weights
    stay on the k_G-bit grid. `lr` is WAGE's eta (scheduled as any optimizer's lr)."""

    def __init__(self, params: Iterable[Tensor], lr: float, grad_bits: int,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(params, {"lr": lr, "grad_bits": grad_bits})
        self.generator = generator

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            s = wage_sigma(group["grad_bits"])
            for p in group["params"]:
                if p.grad is not None:
                    dw = wage_update(p.grad, group["lr"], group["grad_bits"], self.generator)
                    p.sub_(dw).clamp_(-1 + s, 1 - s)
