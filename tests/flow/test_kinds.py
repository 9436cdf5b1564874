"""One key per layer kind: every stage's registry is built from its modules' KINDS (the IR's
layer classes, `flow.ir.kind_registry`), and every kind the IR knows is lowered, run by the
golden model and built by every backend."""

from __future__ import annotations

from types import ModuleType

import pytest

from flow import golden
from flow.backends import firmware, hls, rtl
from flow.ir import LAYER_KINDS, DenseLayer, kind_registry
from flow.lower import PATTERNS

STAGES = {"golden": golden.OPS, "rtl": rtl.LAYER_KINDS, "hls": hls.LAYER_KINDS,
          "firmware": firmware.LAYER_KINDS}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_kind_has_a_module_in_every_stage(stage: str) -> None:
    registry = STAGES[stage]
    assert set(registry) == set(LAYER_KINDS), f"{stage} misses {set(LAYER_KINDS) - set(registry)}"
    for kind, module in registry.items():
        assert LAYER_KINDS[kind] in module.KINDS


def test_every_kind_is_lowered_from_some_onnx_op() -> None:
    assert {m.KIND for m in PATTERNS.values()} == set(LAYER_KINDS)


def test_a_registry_refuses_unknown_and_doubled_kinds() -> None:
    class Upsample(DenseLayer):  # a class the IR's LAYER_KINDS does not hold
        kind = "upsample"

    def module(name: str, *kinds: type) -> ModuleType:
        m = ModuleType(name)
        m.KINDS = kinds  # type: ignore[attr-defined]
        return m

    with pytest.raises(TypeError, match="the rtl backend: ops_a registers Upsample"):
        kind_registry([module("ops_a", Upsample)], "the rtl backend")
    with pytest.raises(TypeError, match="ops_b registers DenseLayer"):
        kind_registry([module("ops_a", DenseLayer), module("ops_b", DenseLayer)], "a stage")
