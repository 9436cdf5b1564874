"""flow.folding: given (PE, SIMD) per layer, or the least hardware meeting a cycle target."""

from __future__ import annotations

import pytest

from flow.folding import apply_folding, cheapest_folding, cycles_for_fps, divisors
from flow.synthetic import random_model


def tfc():
    return random_model([784, 64, 64, 64, 10], ["BIPOLAR"] * 4, ["BIPOLAR"] * 3, "BIPOLAR")


def test_given_folding() -> None:
    m = tfc()
    apply_folding(m, [(16, 49), (8, 8), (8, 8), (10, 8)])
    assert [(la.folding.pe, la.folding.simd) for la in m.layers] == \
        [(16, 49), (8, 8), (8, 8), (10, 8)]
    assert [la.cycles for la in m.layers] == [64, 64, 64, 8]
    assert m.initiation_interval == 64


@pytest.mark.parametrize("bad, match", [
    ([(16, 49), (8, 8), (8, 8)], "3 .PE, SIMD. pairs for 4 layers"),
    ([(16, 49), (8, 7), (8, 8), (10, 8)], r"layer 1 \(dense1\): PE 8 .* SIMD 7"),
    ([(16, 49), (8, 8), (8, 8), (3, 8)], r"layer 3 \(dense3\): PE 3"),
    ([(0, 49), (8, 8), (8, 8), (10, 8)], r"layer 0 \(dense0\)"),
])
def test_given_folding_rejected(bad: list[tuple[int, int]], match: str) -> None:
    m = tfc()
    with pytest.raises(ValueError, match=match):
        apply_folding(m, bad)
    assert all(la.folding.pe == la.folding.simd == 1 for la in m.layers)  # left untouched


def test_needs_one_mode() -> None:
    with pytest.raises(ValueError, match="either"):
        apply_folding(tfc())
    with pytest.raises(ValueError, match="either"):
        apply_folding(tfc(), [(1, 1)] * 4, target_cycles=10)
    with pytest.raises(ValueError, match="below 1"):
        apply_folding(tfc(), target_cycles=0)


@pytest.mark.parametrize("target", [1, 7, 64, 100, 1000, 10**6])
def test_target_is_cheapest(target: int) -> None:
    m = tfc()
    apply_folding(m, target_cycles=target)
    assert m.initiation_interval <= target
    for layer in m.layers:
        f = layer.folding
        lanes = f.pe * f.simd
        # brute force: nothing with fewer lanes meets the target
        for pe in divisors(layer.out_features):
            for simd in divisors(layer.in_features):
                if (layer.out_features // pe) * (layer.in_features // simd) <= target:
                    assert pe * simd >= lanes


def test_target_examples() -> None:
    m = tfc()
    apply_folding(m, target_cycles=64)
    assert [la.folding.pe * la.folding.simd for la in m.layers] == [784, 64, 64, 10]
    assert cheapest_folding(m.layers[0], 784 * 64).pe == 1  # fully folded: one lane
    assert cheapest_folding(m.layers[0], 1).simd == 784


def test_cycles_for_fps() -> None:
    assert cycles_for_fps(1e6, 100.0) == 100
    assert cycles_for_fps(3e6, 100.0) == 33  # round down: 33 cycles sustain 3 M frames/s
    with pytest.raises(ValueError):
        cycles_for_fps(0, 100.0)
    with pytest.raises(ValueError, match="more than one frame per cycle"):
        cycles_for_fps(2e8, 100.0)
