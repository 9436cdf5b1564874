"""The HLS templates (hls/*.hpp) under g++, each block against a Python model.

Single-layer MVAUs go through the generated top and testbench (a one-layer model whose
layer may keep its thresholds), compared with `golden.layer`; the fallback integer types
and the width converter have their own small harnesses.
"""

from __future__ import annotations

import copy
import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow import golden, synthetic
from flow.backends import hls
from flow.backends.thresholds import hardware_thresholds
from flow.datatypes import dtype
from flow.ir import DenseLayer, Folding, IRError, Model, Thresholds, accumulator_bounds
from tests.helpers.hls import compile_and_run


def one_layer(in_f: int, out_f: int, w_t: str, in_t: str, act_t: str | None,
              folding: tuple[int, int], seed: int = 0) -> Model:
    """A random one-layer model; with act_t, the layer keeps its thresholds and the top
    outputs its codes (a hidden layer tested alone)."""
    if act_t is None:
        return synthetic.random_model([in_f, out_f], [w_t], [], in_t, [folding], seed)
    m = synthetic.random_model([in_f, out_f, 2], [w_t, "INT2"], [act_t], in_t,
                               [folding, (1, 1)], seed)
    return dataclasses.replace(m, layers=m.layers[:1])


def with_weights(m: Model, w: np.ndarray) -> Model:
    """The model with new weights for its only layer, its accumulator bound recomputed."""
    layer = m.layers[0]
    lo, hi = accumulator_bounds(w, layer.input_dtype.min, layer.input_dtype.max)
    layer = dataclasses.replace(layer, weights=w, acc_min=int(lo.min()), acc_max=int(hi.max()))
    return dataclasses.replace(m, layers=[layer])


def with_thresholds(m: Model, t: np.ndarray, out_t: str, base: int = 0, step: int = 1) -> Model:
    layer = dataclasses.replace(m.layers[0], activation=Thresholds(
        values=np.sort(t, axis=1), base=base, step=step, out_dtype=dtype(out_t)))
    return dataclasses.replace(m, layers=[layer])


def check(m: Model, tmp_path: Path, codes: np.ndarray | None = None) -> None:
    codes = synthetic.random_codes(m, 40, seed=7) if codes is None else codes
    out = hls.run(m, tmp_path, codes)
    ref = golden.run_codes(m, codes)
    assert out.shape == ref.shape
    bad = np.argwhere(out != ref)
    assert not len(bad), f"first differences (sample, channel): {bad[:5].tolist()}"


@pytest.mark.parametrize("header", [p.name for p in hls.headers()])
def test_header_compiles_alone(header: str) -> None:
    r = subprocess.run([hls.CXX, *hls.CXXFLAGS, "-fsyntax-only", f"-I{hls.template_dir()}",
                        "-x", "c++", "-"], input=f'#include "{header}"\n',
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_fallback_types_wrap_and_slice(tmp_path: Path) -> None:
    out = compile_and_run(tmp_path, r"""
#include <cstdio>
#include "qflow_types.hpp"
static_assert(!QFLOW_VENDOR_TYPES, "these checks are of the fallback types");
int main() {
  ap_int<5> a = 17;                 // wraps to -15
  ap_uint<4> b = -1;                // 15
  ap_int<8> c = 100; c += 100;      // -56
  ap_int<3> d = ap_uint<3>(6);      // bit pattern 110: -2
  ap_uint<150> v("0x3ffffffffffffffffffffffffffffffffff", 16);  // 138 ones
  ap_uint<150> z = 0;
  qflow::set_field<7>(z, 9, ap_uint<7>(0x55));   // bits 63..69: straddles two words
  qflow::set_field<7>(z, 20, ap_uint<7>(0x7f));  // bits 140..146
  ap_uint<150> m = -1;                           // sign extends through every word
  std::printf("%lld %lld %lld %lld\n", (long long)a, (long long)b, (long long)c, (long long)d);
  std::printf("%llu %llu %llu\n", (unsigned long long)qflow::field<7>(z, 9),
              (unsigned long long)qflow::field<7>(z, 20), (unsigned long long)z.range(62, 0));
  std::printf("%llu %llu %llu\n", (unsigned long long)v.range(137, 74),
              (unsigned long long)v.range(149, 138), (unsigned long long)m.range(149, 100));
  return 0;
}
""")
    assert out.split() == ["-15", "15", "-56", "-2",
                           str(0x55), str(0x7F), "0",
                           str(2**64 - 1), "0", str(2**50 - 1)]


def test_width_converter_keeps_order(tmp_path: Path) -> None:
    """Up, down and neither (via the gcd), 1- to 32-bit elements, two vectors in a row."""
    pairs = [(4, 2, 8), (2, 4, 8), (3, 2, 12), (2, 3, 12), (6, 4, 24), (1, 5, 10), (5, 1, 10),
             (7, 7, 14), (16, 49, 784), (49, 16, 784)]
    calls = "\n".join(f"  ok &= check<{a}, {b}, {bits}, {n}>();"
                      for a, b, n in pairs for bits in (1, 3, 32))
    out = compile_and_run(tmp_path, f"""
#include <cstdio>
#define AP_INT_MAX_W 2048  // 49 x 32-bit elements
#include "qflow_dwc.hpp"
unsigned long long element(unsigned k, unsigned bits) {{
  return (k * 2654435761u + 7) & ((1ull << bits) - 1);
}}
template <unsigned In, unsigned Out, unsigned B, unsigned N>
bool check() {{
  hls::stream<ap_uint<In * B>> in("in");
  hls::stream<ap_uint<Out * B>> out("out");
  for (unsigned rep = 0; rep < 2; rep++)
    for (unsigned w = 0; w < N / In; w++) {{
      ap_uint<In * B> word = 0;
      for (unsigned e = 0; e < In; e++)
        qflow::set_field<B>(word, e, ap_uint<B>(element(w * In + e, B)));
      in.write(word);
    }}
  qflow::dwc<In, Out, B, N>(in, out);
  qflow::dwc<In, Out, B, N>(in, out);
  bool ok = in.empty() && out.size() == 2 * N / Out;
  for (unsigned rep = 0; rep < 2 && ok; rep++)
    for (unsigned w = 0; w < N / Out; w++) {{
      const ap_uint<Out * B> word = out.read();
      for (unsigned e = 0; e < Out; e++)
        ok &= (unsigned long long)qflow::field<B>(word, e) == element(w * Out + e, B);
    }}
  if (!ok) std::printf("dwc<%u, %u, %u, %u> wrong\\n", In, Out, B, N);
  return ok;
}}
int main() {{
  bool ok = true;
{calls}
  std::printf(ok ? "ok\\n" : "FAIL\\n");
  return 0;
}}
""")
    assert out.strip().endswith("ok"), out


# (in, out, weight type, input type, activation type or None for an accumulator output)
LAYERS = [
    (64, 32, "BIPOLAR", "BIPOLAR", "BIPOLAR"),  # XNOR-popcount
    (64, 10, "BIPOLAR", "BIPOLAR", None),  # XNOR, popcount mapped back to the sum
    (48, 24, "BIPOLAR", "UINT4", "UINT2"),  # add/subtract
    (48, 24, "INT3", "BIPOLAR", "INT3"),  # add/subtract on the input side
    (40, 20, "INT8", "BIPOLAR", "BIPOLAR"),  # BIPOLAR in and out, int8 weights
    (33, 11, "INT2", "BIPOLAR", None),
    (40, 20, "TERNARY", "INT4", "TERNARY"),
    (36, 12, "INT8", "UINT8", "UINT4"),
    (30, 15, "UINT2", "INT5", None),
    (2, 6, "INT16", "UINT14", None),  # a 32-bit accumulator, the widest supported
]


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_mvau_random_folding(tmp_path: Path, case: int) -> None:
    in_f, out_f, w_t, in_t, act_t = LAYERS[case]
    rng = np.random.default_rng(case)
    folding = (int(rng.choice(divisors(out_f))), int(rng.choice(divisors(in_f))))
    check(one_layer(in_f, out_f, w_t, in_t, act_t, folding, seed=case), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40))
def test_mvau_random_sweep(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    types = ["BIPOLAR", "TERNARY", "INT2", "INT4", "UINT3", "UINT8", "INT8"]
    in_f, out_f = int(rng.integers(1, 80)), int(rng.integers(1, 40))
    w_t, in_t = str(rng.choice(types)), str(rng.choice(types))
    act_t = None if rng.random() < 0.3 else str(rng.choice(types))
    folding = (int(rng.choice(divisors(out_f))), int(rng.choice(divisors(in_f))))
    check(one_layer(in_f, out_f, w_t, in_t, act_t, folding, seed), tmp_path)


@pytest.mark.parametrize(("w_t", "in_t", "sign"), [
    ("BIPOLAR", "BIPOLAR", 1), ("BIPOLAR", "INT4", -1),
    ("INT4", "BIPOLAR", 1), ("INT8", "BIPOLAR", -1), ("UINT8", "BIPOLAR", 1),
    ("INT8", "INT8", -1), ("UINT4", "UINT8", 1),
])
def test_mvau_extreme_weights_and_inputs(tmp_path: Path, w_t: str, in_t: str, sign: int) -> None:
    """All-max or all-min weights on all-min / all-max inputs reach both accumulator bounds;
    thresholds at the bounds and one past them are ties and misses."""
    m = one_layer(32, 8, w_t, in_t, "UINT2", (4, 8))
    t = dtype(w_t)
    m = with_weights(m, np.full((8, 32), t.max if sign > 0 else t.min, np.int64))
    layer = m.layers[0]
    lo, hi = layer.acc_min, layer.acc_max
    m = with_thresholds(m, np.tile([lo, hi, hi + 1], (8, 1)), "UINT2")
    x_t = dtype(in_t)
    codes = np.array([[x_t.min] * 32, [x_t.max] * 32, [x_t.min, x_t.max] * 16])
    check(m, tmp_path, codes)
    # the same weights as a last layer: the accumulators themselves
    check(dataclasses.replace(m, layers=[dataclasses.replace(layer, activation=None)]),
          tmp_path / "acc", codes)


@pytest.mark.parametrize(("w_t", "in_t", "folding"), [
    ("BIPOLAR", "BIPOLAR", (3, 5)), ("INT4", "UINT4", (2, 3)), ("BIPOLAR", "INT3", (6, 1)),
])
def test_thresholds_ties(tmp_path: Path, w_t: str, in_t: str, folding: tuple[int, int]) -> None:
    """Thresholds equal to accumulators that occur (repeated ones too): `acc >= T` counts
    a tie, as the golden model does; for XNOR layers they hit the popcount exactly."""
    m = one_layer(30, 12, w_t, in_t, "UINT3", folding, seed=5)
    codes = synthetic.random_codes(m, 60, seed=9)
    layer = m.layers[0]
    acc = codes @ layer.weights.T
    rng = np.random.default_rng(3)
    t = np.stack([rng.choice(acc[:, o], size=7) for o in range(layer.out_features)])
    t[:, 3] = t[:, 2]  # a repeated threshold: two levels at once
    check(with_thresholds(m, t, "UINT3"), tmp_path, codes)


def test_bipolar_output_levels(tmp_path: Path) -> None:
    """A BIPOLAR activation (base -1, step 2) is stored as one bit and read back as -1/+1."""
    m = one_layer(16, 8, "INT2", "UINT2", "BIPOLAR", (8, 16), seed=2)
    codes = synthetic.random_codes(m, 50)
    out = hls.run(m, tmp_path, codes)
    assert set(np.unique(out)) == {-1, 1}
    assert np.array_equal(out, golden.run_codes(m, codes))


def test_rejects_accumulators_over_32_bits(tmp_path: Path) -> None:
    m = one_layer(4, 2, "INT16", "INT16", None, (1, 1))
    with pytest.raises(ValueError, match="at most 32"):
        hls.generate(m, tmp_path)


def test_layer_fields(tmp_path: Path) -> None:
    """Folding and datatypes reach the generated call as the IR gives them."""
    layer = DenseLayer(name="d", source="s", in_features=8, out_features=4,
                       input_dtype=dtype("UINT2"), weight_dtype=dtype("TERNARY"),
                       weights=np.ones((4, 8), np.int64), acc_min=0, acc_max=24,
                       activation=None, folding=Folding(2, 4))
    s = hls.stage(layer, 0)
    assert (s.acc_bits, s.datapath, s.out_type) == (6, "mac", "qflow::int_t<6>")
    assert s.act_type == "qflow::accumulator_out<6, 1, 0>"
    with pytest.raises(IRError, match="layer d .*kind 'lstm' is not supported by the HLS "
                                      "backend .it handles: add, avgpool, conv2d, dense, maxpool."):
        unknown = copy.copy(layer)
        unknown.kind = "lstm"  # type: ignore[misc]  # a kind the HLS backend does not build
        hls.stage(unknown, 0)


def test_hardware_thresholds_clip_to_the_accumulator() -> None:
    """Thresholds the accumulator cannot reach become one past its ends (popcount for
    XNOR layers); the stage stores exactly these."""
    m = one_layer(8, 2, "INT2", "UINT2", "UINT2", (1, 1))
    layer = m.layers[0]  # sums in [acc_min, acc_max]
    lo, hi = layer.acc_min, layer.acc_max
    m = with_thresholds(m, np.array([[lo - 5, lo, hi + 9], [lo + 1, hi, hi + 1]]), "UINT2")
    t = hardware_thresholds(m.layers[0])
    assert t.tolist() == [[lo, lo, hi + 1], [lo + 1, hi, hi + 1]] and t.dtype == np.int64
    assert np.array_equal(hls.stage(m.layers[0], 0).thresholds, t)
    # XNOR over 8 inputs: acc = 2 * popcount - 8, acc >= T <=> popcount >= ceil((T + 8) / 2)
    x = one_layer(8, 1, "BIPOLAR", "BIPOLAR", "UINT2", (1, 1))
    x = with_thresholds(x, np.array([[-20, -3, 9]]), "UINT2")
    assert hardware_thresholds(x.layers[0]).tolist() == [[0, 3, 9]]
    with pytest.raises(IRError, match="no thresholds"):
        hardware_thresholds(dataclasses.replace(layer, activation=None))
