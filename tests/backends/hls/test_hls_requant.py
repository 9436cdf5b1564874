"""The requantization blocks (hls/qflow_requant.hpp) under g++ against `golden.requantize`,
in both of the IR's roundings: the struct and parameter header the dense stage generates
for a layer, applied to chosen accumulators on every channel (PE and output fold), on the
fallback types and on Xilinx's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from flow import synthetic
from flow.backends import hls
from flow.backends.hls import dense, vendor
from flow.datatypes import dtype
from flow.golden.requant import requantize
from flow.ir import DenseLayer, Folding, Requant
from flow.ir.requant import INT32_MAX

ROUNDINGS = ("half_even", "tflite")
XNOR_INPUTS = 64  # an XNOR layer's popcount 0..64 is the sum 2 * popcount - 64
TYPES = ["fallback", pytest.param("vendor", marks=pytest.mark.slow)]


def layer_of(act: Requant, acc: tuple[int, int], pe: int, xnor: bool = False) -> DenseLayer:
    """A dense layer with this requantization and accumulator bounds (weights unused)."""
    r = (-XNOR_INPUTS, XNOR_INPUTS) if xnor else acc
    t = dtype("BIPOLAR" if xnor else "INT2")
    in_f, c = XNOR_INPUTS if xnor else 2, len(act.bias)
    act.check("test", c)
    act.check_range("test", *r)
    return DenseLayer(name="rq", source="test", in_features=in_f, out_features=c,
                      input_dtype=t, weight_dtype=t, weights=np.ones((c, in_f), np.int64),
                      acc_min=r[0], acc_max=r[1], activation=act, folding=Folding(pe, 1))


def run_block(tmp_path: Path, layer: DenseLayer, accs: np.ndarray, types: str) -> np.ndarray:
    """The block's output codes [len(accs), C] for the hardware accumulators `accs` (the
    popcounts of an XNOR layer) on every channel."""
    include = vendor.installed() if types == "vendor" else None
    if types == "vendor" and include is None:
        pytest.skip(f"Xilinx's ap_int.h / hls_stream.h are not installed ({vendor.AP_TYPES})")
    s = dense.stage(layer, 0)
    (tmp_path / s.params_file).write_text(dense.params_header(s))
    nf = layer.out_features // layer.folding.pe
    values = ", ".join(f"{int(a)}LL" for a in accs)
    src, exe = tmp_path / "harness.cpp", tmp_path / "harness"
    src.write_text(f"""#include <cstdio>
#include "qflow_mvau.hpp"
int main() {{
#include "{s.params_file}"
  (void){s.name}_weights;
  static const long long accs[] = {{{values}}};
  for (long long a : accs)
    for (unsigned nf = 0; nf < {nf}; nf++)
      for (unsigned pe = 0; pe < {layer.folding.pe}; pe++)
        std::printf("%lld\\n", (long long){s.out_type}::decode(
            {s.name}_act.activate(nf, pe, ap_int<{s.acc_bits}>(a))));
  return 0;
}}
""")
    cmd = [hls.CXX, *hls.cxx_flags(vendor_include=include), f"-I{hls.template_dir()}",
           f"-I{tmp_path}", str(src), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return np.array(out.split(), np.int64).reshape(len(accs), layer.out_features)


def check(tmp_path: Path, layer: DenseLayer, accs: np.ndarray, types: str = "fallback") -> None:
    assert isinstance(layer.activation, Requant)
    sums = 2 * accs - layer.in_features if layer.is_xnor else accs
    ref = requantize(sums[:, None], layer.activation)
    out = run_block(tmp_path, layer, accs, types)
    bad = np.argwhere(out != ref)
    assert not len(bad), [(int(sums[k]), int(c), int(out[k, c]), int(ref[k, c]))
                          for k, c in bad[:5]]


def accumulators(rng: np.random.Generator, lo: int, hi: int, n: int = 300) -> np.ndarray:
    """Both ends, the values around 0 and a random draw in [lo, hi]."""
    near = [v for v in range(-3, 4) if lo <= v <= hi]
    return np.concatenate([[lo, lo + 1, hi - 1, hi], near, rng.integers(lo, hi + 1, n)])


def all_accumulators(layer: DenseLayer) -> np.ndarray:
    """Every hardware accumulator of a narrow layer (popcounts for XNOR)."""
    return np.arange(0, layer.in_features + 1) if layer.is_xnor \
        else np.arange(layer.acc_min, layer.acc_max + 1)


def requant(rounding: str, channels: list[tuple[int, int, int]], out_t: str, zero_point: int,
            clamp: tuple[int, int]) -> Requant:
    """Channels of (multiplier, shift, bias)."""
    m, s, b = (np.array(v, np.int64) for v in zip(*channels, strict=True))
    return Requant(bias=b, multiplier=m, shift=s, zero_point=zero_point, clamp_min=clamp[0],
                   clamp_max=clamp[1], out_dtype=dtype(out_t), rounding=rounding)


# (multiplier, right shift, bias in the product's units) over sums in [-1000, 1000] (or an
# XNOR layer's even sums in [-64, 64]): ties of both parities at n = 1, 2, 5 and 62 (m = 0
# too), a factor of almost one at n = 31 (with a bias of -1/2: just off a tie), saturating
# products at n = 40, negative products throughout
HALF_EVEN_EDGES = [
    (1, 1, 1), (3, 2, 2), (7, 3, 0), (1, 62, 2**61), (1, 62, -(2**61)),
    (1, 62, -(2**62) + 2**20), (0, 62, 3 * 2**60), (0, 5, -48), (0, 5, -16),
    (INT32_MAX, 31, 0), (INT32_MAX, 31, -(2**30)), (INT32_MAX, 40, -(2**61)),
    (INT32_MAX, 40, 2**61), (12345, 20, -777),
]
# over 32-bit sums, products up to 2^62 - 2^32: n = 1 and 62, the whole int32 output range
HALF_EVEN_WIDE = [
    (1, 1, 0), (1, 1, 1), (2**30, 31, 0), (INT32_MAX, 62, 0), (INT32_MAX, 62, 2**31),
    (INT32_MAX, 31, 2**31 - 2), (INT32_MAX, 56, -(2**31) + 1), (0, 62, 2**61),
    (0, 62, -(2**61)), (12345, 7, -3),
]
# (multiplier, shift, bias in accumulator units): SRDHM's ties at a factor of 1/2, RDBPOT's
# at 1/4, the smallest factor, the largest multiplier at the largest left shift the sums
# [-1003, 1005] allow (saturating), multiplier 0
TFLITE_EDGES = [
    (2**30, 0, 0), (2**30, -1, 0), (2**30, -31, 0), (INT32_MAX, 21, 0), (INT32_MAX, 0, 5),
    (0, 0, 7), (2**30 + 12345, -5, -3), (INT32_MAX, -31, 0), (2**30, -2, 1), (INT32_MAX, 3, -2),
]


@pytest.mark.parametrize("types", TYPES)
@pytest.mark.parametrize("xnor", [False, True], ids=["mac", "xnor"])
def test_half_even_edges(tmp_path: Path, xnor: bool, types: str) -> None:
    act = requant("half_even", HALF_EVEN_EDGES, "INT8", -3, (-100, 110))
    layer = layer_of(act, (-1000, 1000), 7, xnor)
    check(tmp_path, layer, all_accumulators(layer), types)


@pytest.mark.parametrize("types", TYPES)
def test_half_even_wide(tmp_path: Path, types: str) -> None:
    """32-bit accumulators: ProductBits 63, the widest the block takes."""
    act = requant("half_even", HALF_EVEN_WIDE, "INT32", 1, (-(2**31) + 5, 2**31 - 7))
    layer = layer_of(act, (-(2**31), INT32_MAX), 5)
    assert dense.stage(layer, 0).requant.product_bits == 63  # type: ignore[union-attr]
    edges = [2**30 + d for d in (-1, 0, 1)] + [-(2**30) + d for d in (-1, 0, 1)]
    accs = np.concatenate([accumulators(np.random.default_rng(1), -(2**31), INT32_MAX), edges])
    check(tmp_path, layer, accs, types)


@pytest.mark.parametrize("types", TYPES)
@pytest.mark.parametrize("xnor", [False, True], ids=["mac", "xnor"])
def test_tflite_edges(tmp_path: Path, xnor: bool, types: str) -> None:
    act = requant("tflite", TFLITE_EDGES, "UINT8", 100, (3, 250))
    layer = layer_of(act, (-1000, 1000), 2, xnor)
    check(tmp_path, layer, all_accumulators(layer), types)


# (accumulator bounds or None for an XNOR layer, output type, PE) for synthetic.random_requant
RANDOM = [((-36 * 128 * 127, 36 * 128 * 128), "INT8", 4), (None, "UINT4", 3),
          ((-5, 40), "UINT2", 1), ((-(2**20), 2**20 - 1), "INT16", 6)]


@pytest.mark.parametrize("types", TYPES)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("case", range(len(RANDOM)))
def test_random_requant(tmp_path: Path, case: int, rounding: str, types: str) -> None:
    """Random factors, biases, zero points and clamps with the extreme channels
    `synthetic.random_requant` draws (largest and smallest factor, multiplier 0)."""
    bounds, out_t, pe = RANDOM[case]
    rng = np.random.default_rng(case)
    lo, hi = bounds or (-XNOR_INPUTS, XNOR_INPUTS)
    # channels and accumulator bounds first: the draw reads them from the layer
    blank = layer_of(requant(rounding, [(0, 1, 0)] * 12, out_t, 0, (0, 0)), (lo, hi), pe,
                     bounds is None)
    act = synthetic.random_requant(rng, blank, dtype(out_t), rounding)
    layer = layer_of(act, (lo, hi), pe, bounds is None)
    accs = all_accumulators(layer) if bounds is None or hi - lo < 2000 \
        else accumulators(rng, lo, hi)
    check(tmp_path, layer, accs, types)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_generated_struct(rounding: str) -> None:
    """Each rounding's struct, widths from the IR's bounds, and its arrays partitioned."""
    act = requant(rounding, [(2**30, 1, 5), (INT32_MAX, 3, -7)], "INT4", 0, (-8, 7))
    s = dense.stage(layer_of(act, (-100, 300), 2), 0)
    if rounding == "half_even":  # sums in [-100, 300]: 10 bits; products 41 bits
        assert s.act_type == ("qflow::requant_half_even<2, 1, 10, 4, 41, 3, qflow::int_t<4>, "
                              "0, -8, 7, 1, 0>")
        arrays = ["bias", "multiplier", "rsh"]
    else:  # sums plus biases in [-107, 305]: 10 bits; left shift 3
        assert s.act_type == "qflow::requant<2, 1, 4, 10, 3, 0, qflow::int_t<4>, 0, -8, 7, 1, 0>"
        arrays = ["bias", "multiplier", "lsh", "rsh"]
    assert [line.split(".")[1].split()[0] for line in s.partitions().splitlines()[1:]] == arrays
