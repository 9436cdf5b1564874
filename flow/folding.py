"""Folding: how many output channels (PE) and input lanes (SIMD) each layer computes at once.

PE divides a layer's output channels and SIMD the input lanes of one output (`pe_dim`,
`simd_dim`: a dense layer's outputs and inputs; a convolution's output channels and input
channels, a depthwise one's channels and 1; a pool's channels and 1). A layer's cycles per
frame come from the IR (`layer.cycles`); the pipeline's initiation interval is the slowest
layer's.
`apply_folding` either takes (PE, SIMD) per layer or picks, for every layer, the least
hardware (fewest PE x SIMD lanes) that meets a cycle target.
"""

from __future__ import annotations

import math

from flow.ir import Folding, Layer, Model


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def cheapest_folding(layer: Layer, target_cycles: int) -> Folding:
    """The (PE, SIMD) with the fewest lanes whose cycles fit target_cycles; among equals,
    more SIMD (wider input beats, narrower output: fewer threshold units)."""
    best: tuple[int, int, int] | None = None
    fallback = layer.folding
    try:
        for pe in divisors(layer.pe_dim):
            for simd in divisors(layer.simd_dim):
                layer.folding = Folding(pe=pe, simd=simd)
                if layer.cycles <= target_cycles:
                    key = (pe * simd, pe, simd)
                    if best is None or key < best:
                        best = key
                    break  # a larger SIMD only adds lanes
    finally:
        layer.folding = fallback
    if best is None:  # a frame's positions alone exceed the target: fold fully
        return Folding(pe=layer.pe_dim, simd=layer.simd_dim)
    return Folding(pe=best[1], simd=best[2])


def apply_folding(model: Model, per_layer: list[tuple[int, int]] | None = None,
                  target_cycles: int | None = None) -> None:
    """Set every layer's folding: the given (PE, SIMD) per layer, or the cheapest meeting
    target_cycles per inference. Raises ValueError naming the layer on a bad request."""
    if (per_layer is None) == (target_cycles is None):
        raise ValueError("folding: give either (PE, SIMD) per layer or a target in cycles")
    if per_layer is not None:
        if len(per_layer) != len(model.layers):
            raise ValueError(f"folding: {len(per_layer)} (PE, SIMD) pairs for "
                             f"{len(model.layers)} layers")
        for i, (layer, (pe, simd)) in enumerate(zip(model.layers, per_layer, strict=True)):
            if pe < 1 or simd < 1 or layer.pe_dim % pe or layer.simd_dim % simd:
                raise ValueError(
                    f"folding: layer {i} ({layer.name}): PE {pe} must divide its "
                    f"{layer.pe_dim} output channels and SIMD {simd} its {layer.simd_dim} "
                    "input lanes")
        for layer, (pe, simd) in zip(model.layers, per_layer, strict=True):
            layer.folding = Folding(pe=pe, simd=simd)
        return
    assert target_cycles is not None
    if target_cycles < 1:
        raise ValueError(f"folding: target of {target_cycles} cycles per inference is below 1")
    for layer in model.layers:
        layer.folding = cheapest_folding(layer, target_cycles)


# finn-examples' folding (PE, SIMD) per weighted layer, in order: BNN-PYNQ's CNV convolutions,
# then its three fully connected layers (finn-examples build_dataflow folding configs)
PRESETS: dict[str, list[tuple[int, int]]] = {
    "cnv-w1a1": [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32),
                 (1, 4), (1, 8), (5, 1)],
    "cnv-w2a2": [(8, 3), (16, 16), (8, 16), (8, 16), (4, 8), (1, 8),
                 (1, 2), (2, 2), (5, 1)],
}


def preset_folding(model: Model, name: str) -> list[tuple[int, int]]:
    """A preset's (PE, SIMD) for every layer: the weighted layers take the preset's pairs in
    order; a pool takes the PE of the layer before it (its stream's width), SIMD 1."""
    if name not in PRESETS:
        raise ValueError(f"folding: unknown preset {name!r} (presets: {', '.join(PRESETS)})")
    pairs = iter(PRESETS[name])
    weighted = sum(layer.weighted for layer in model.layers)
    if weighted != len(PRESETS[name]):
        raise ValueError(f"folding: preset {name} folds {len(PRESETS[name])} weighted layers, "
                         f"the model has {weighted}")
    out: list[tuple[int, int]] = []
    for layer in model.layers:
        out.append(next(pairs) if layer.weighted else
                   (math.gcd(out[-1][0] if out else 1, layer.pe_dim), 1))
    return out


def cycles_for_fps(fps: float, clock_mhz: float) -> int:
    """Cycles per inference that sustain `fps` frames per second at `clock_mhz`."""
    if not (math.isfinite(fps) and math.isfinite(clock_mhz) and fps > 0 and clock_mhz > 0):
        raise ValueError(f"folding: fps ({fps}) and clock ({clock_mhz} MHz) must be positive "
                         "and finite")
    cycles = math.floor(clock_mhz * 1e6 / fps)
    if cycles < 1:
        raise ValueError(f"folding: {fps} frames/s needs more than one frame per cycle at "
                         f"{clock_mhz} MHz")
    return cycles
