"""Residual graphs in the firmware (issue #26): qnn_add against golden on random and extreme
codes (both activation forms, both roundings, input weights (1, 1) and (2, 1), storage
offsets); the arena planned over a graph, a skip held across a long branch; Brevitas'
QuantBasicBlocks lowered and run on the host with ASan/UBSan and on RV32IMC under QEMU,
equal to golden, with instruction counts per layer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.backends.firmware import add as fwadd
from flow.datatypes import dtype
from flow.golden import add as golden_add
from flow.ir import MODEL_INPUT, AddLayer, Model, Thresholds
from flow.resources import fill_template
from flow.synthetic import activation_for, random_cnn_model, random_codes, random_requant
from tests.helpers.firmware import run_harness, rv32
from tests.helpers.residual import residual_inputs, residual_onnx

SHAPE = (1, 8, 8)


def add_layer(rng: np.random.Generator, shape: tuple[int, int, int], a_t: str, b_t: str,
              weights: tuple[int, int], out_t: str, form: str, name: str = "add") -> AddLayer:
    """An add of random activation: thresholds over its whole range (one below it, one
    past it), or a requantization in rounding `form`."""
    layer = AddLayer(name=name, source="test", in_shape=shape, out_shape=shape,
                     input_dtype=dtype(a_t), other_dtype=dtype(b_t), input_weights=weights,
                     acc_min=0, acc_max=0, activation=None)
    lo, hi = layer.worst_case()
    layer = dataclasses.replace(layer, acc_min=lo, acc_max=hi)
    ot, c = dtype(out_t), shape[2]
    if form == "thresholds":
        base, step, k = activation_for(ot)
        t = np.sort(rng.integers(lo - 2, hi + 3, size=(c, k)), axis=1)
        t[0, :] = lo
        t[-1, -1] = hi + 1
        act = Thresholds(values=t, base=base, step=step, out_dtype=ot)
    else:
        act = random_requant(rng, layer, ot, form)  # type: ignore[arg-type]
    return dataclasses.replace(layer, activation=act)


def stored(codes: np.ndarray, t: str) -> np.ndarray:
    return (codes - fw.storage_offset(dtype(t))).astype(np.int8)


# (a, b, weights, out, form): UINT8 inputs stored minus 128 (the fold of WA * 128 + WB * 128)
ADDS = [("UINT8", "UINT8", (1, 1), "UINT8", "half_even"),
        ("UINT8", "INT8", (2, 1), "UINT8", "tflite"),
        ("INT8", "UINT8", (1, 1), "INT8", "thresholds"),
        ("UINT4", "UINT4", (2, 1), "UINT4", "thresholds"),
        ("INT4", "UINT8", (2, 1), "INT8", "half_even"),
        ("UINT8", "UINT8", (2, 1), "UINT8", "thresholds"),
        ("INT4", "INT4", (1, 1), "UINT2", "tflite")]


@pytest.mark.parametrize("target", ["host", pytest.param("rv32", marks=[rv32, pytest.mark.slow])])
def test_add_kernel_equals_golden(tmp_path: Path, target: str) -> None:
    """Every case's frame: random codes, then pixels of extremes (min + min, max + max,
    min + max, max + min) where the sums reach the accumulator's ends."""
    rng = np.random.default_rng(5)
    body, cases, names = [], [], []
    out_bytes = 4
    for k, (a_t, b_t, weights, out_t, form) in enumerate(ADDS):
        shape = (3, 2, 7)
        layer = add_layer(rng, shape, a_t, b_t, weights, out_t, form)
        ta, tb = dtype(a_t), dtype(b_t)
        a = rng.integers(ta.min, ta.max + 1, size=(1, layer.in_features))
        b = rng.integers(tb.min, tb.max + 1, size=(1, layer.in_features))
        c = shape[2]
        for p, (x, y) in enumerate([(ta.min, tb.min), (ta.max, tb.max), (ta.min, tb.max),
                                    (ta.max, tb.min)]):
            a[0, p * c:(p + 1) * c], b[0, p * c:(p + 1) * c] = x, y
        want = stored(golden_add.prepare(layer)(a, b)[0], out_t)
        lp = fwadd.plan_layer(k, layer)
        assert lp.act.out_kind == ("INT8" if form == "thresholds" else "REQUANT")
        body.append(lp.constants_c(f"add{k}"))
        for what, v in (("a", stored(a[0], a_t)), ("b", stored(b[0], b_t)), ("want", want)):
            body.append(fw.c_array("int8_t", f"{what}{k}", v))
        cases.append(f"    {{&add{k}, a{k}, b{k}, want{k}, sizeof want{k}}},")
        names.append(f'    "{weights} * ({a_t}, {b_t}) -> {out_t} by {form}",')
        out_bytes = max(out_bytes, want.nbytes)
    src = fill_template("firmware", "harness/add_cases.c", definitions="\n".join(body),
                        cases="\n".join(cases), names="\n".join(names), out_bytes=out_bytes)
    run_harness(src, tmp_path, target, list(fw.SANITIZE) if target == "host" else [])


def test_add_refuses_bits_by_layer() -> None:
    rng = np.random.default_rng(0)
    layer = add_layer(rng, (2, 2, 3), "INT4", "INT4", (1, 1), "BIPOLAR", "thresholds",
                      name="join7")
    with pytest.raises(fw.FirmwareError, match=r"layer 7 \(join7, from test\).*BIPOLAR"):
        fwadd.plan_layer(7, layer)
    fine = add_layer(rng, (2, 2, 3), "INT4", "INT4", (1, 1), "INT4", "thresholds", name="j")
    with pytest.raises(fw.FirmwareError, match=r"layer 2 \(j, from test\).*not bits"):
        fwadd.plan_layer(2, fine, bits_out=True)


def long_branch(form: str) -> Model:
    """conv0 (the skip) -> conv1 .. conv4 (the branch) -> add5(conv4, conv0) -> dense6: the
    skip lives from step 0 to step 5."""
    chain = random_cnn_model((3, 6, 5), "UINT8", [
        {"conv": 6, "k": 3, "pad": 1, "w": "INT4", "act": "UINT4"},
        {"conv": 8, "k": 3, "pad": 1, "w": "INT4", "act": "INT4"},
        {"conv": 12, "k": 1, "w": "INT8", "act": "UINT8"},
        {"conv": 8, "k": 3, "pad": 1, "w": "INT4", "act": "UINT4"},
        {"conv": 6, "k": 1, "w": "INT4", "act": "UINT4"},
        {"dense": 5, "w": "INT8"}], seed=2, name="long_branch")
    *convs, head = chain.layers
    join = add_layer(np.random.default_rng(3), (6, 5, 6), "UINT4", "UINT4", (2, 1), "UINT4",
                     form, name="add5")
    head = dataclasses.replace(head, name="dense6")
    model = dataclasses.replace(chain, layers=[*convs, join, head],
                                inputs={"add5": ("conv4", "conv0"), "dense6": ("add5",)})
    model.validate("long_branch")
    return model


def lifetimes(model: Model) -> dict[str, tuple[int, int]]:
    """From the graph alone: each layer's output lives from its layer to its last reader."""
    index = {lay.name: i for i, lay in enumerate(model.layers)}
    return {name: (index[name], max((index[r] for r in readers), default=index[name]))
            for name, readers in model.consumers().items() if name != MODEL_INPUT}


@pytest.mark.parametrize("form", ["thresholds", pytest.param("tflite", marks=pytest.mark.slow)])
def test_arena_holds_the_skip_across_a_long_branch(tmp_path: Path, form: str) -> None:
    """Buffers (and scratches) that live at one step never overlap, so the skip survives
    the branch: from the plan, and on the host with ASan/UBSan equal to golden."""
    model = long_branch(form)
    p = fw.plan(model)
    assert p.input_buffer and [r for r in p.reads] == [
        (0,), (1,), (2,), (3,), (4,), (5, 1), (6,)]  # add5 reads conv4 and conv0's buffers
    live = lifetimes(model)
    assert live["conv0"] == (0, 5) and p.lifetimes[1] == (0, 5)
    assert "held until add5" in p.buffer_holds(1)
    for step, lp in enumerate(p.layers):
        spans = [(p.offsets[0], p.buffers[0])] if step == 0 else []  # the converted input
        spans += [(p.offsets[k + 1], p.buffers[k + 1])
                  for k, lay in enumerate(model.layers[:-1])
                  if live[lay.name][0] <= step <= live[lay.name][1]]
        spans.append((p.scratch[step], lp.scratch_bytes))
        spans = sorted((o, o + s) for o, s in spans if s)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"step {step}: {spans}"
        assert spans[-1][1] <= p.arena and all(o % 4 == 0 for o, _ in spans)
    rep = fw.size_report(p, "esp32")
    assert rep["arena_buffers"][1]["holds"] == "the outputs of conv0, held until add5 reads it"
    assert rep["layers"][5]["kernel"] == "qnn_add"
    codes = random_codes(model, 12)
    acc = fw.run(model, tmp_path, codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))


_RESNETS: dict[int, Model] = {}


def resnet(act_bits: int, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """An identity block and a projection block (tests.helpers.residual), lowered once per
    width: 8-bit activations requantize (half_even), 4-bit ones take thresholds."""
    from flow.lower import lower

    if act_bits not in _RESNETS:
        folder = tmp_path_factory.mktemp(f"resnet{act_bits}")
        _RESNETS[act_bits] = lower(residual_onnx(folder, SHAPE, 8, [(8, 1), (16, 2)],
                                                 act_bits=act_bits))
    return _RESNETS[act_bits]


@pytest.mark.parametrize("act_bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_residual_host_equals_golden(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                     act_bits: int) -> None:
    model = resnet(act_bits, tmp_path_factory)
    assert not model.is_chain and sum(lay.kind == "add" for lay in model.layers) == 2
    x = residual_inputs(SHAPE, 16)
    codes = golden.quantize_input(model.input, x.reshape(len(x), -1))
    acc = fw.run(model, tmp_path, codes, target="host", sanitize=True)
    np.testing.assert_array_equal(acc, golden.run_codes(model, codes))


@rv32
@pytest.mark.slow
@pytest.mark.parametrize("act_bits", [4, 8])
def test_residual_rv32_equals_golden_with_counts(tmp_path: Path,
                                                 tmp_path_factory: pytest.TempPathFactory,
                                                 act_bits: int) -> None:
    """Both targets equal golden; every layer, the adds too, has its instruction count."""
    model = resnet(act_bits, tmp_path_factory)
    x = residual_inputs(SHAPE, 24, seed=act_bits)
    codes = golden.quantize_input(model.input, x.reshape(len(x), -1))
    outs, details = fw.measure(model, tmp_path, codes)
    ref = golden.run_codes(model, codes)
    for target in ("host", "rv32"):
        np.testing.assert_array_equal(outs[target], ref)
    layers = {r["name"]: r for r in details["layers"]}
    assert list(layers) == [lay.name for lay in model.layers]
    for name in ("add3", "add7"):
        assert layers[name]["kernel"] == "qnn_add" and layers[name]["instructions"] > 0
    assert details["instructions_per_mac"]["add"] > 0
