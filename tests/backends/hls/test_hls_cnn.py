"""Convolution and max pooling in HLS: the window generator and the pools under g++ against
plain-loop numpy references, single conv layers against the naive convolution, and whole
random CNNs (generated top + C simulation) equal to the golden model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import backends, golden, synthetic
from flow.backends import hls
from flow.datatypes import dtype
from flow.ir import Conv2dLayer, Folding, Layer, Model, window_output
from tests.helpers.backends import random_folding
from tests.helpers.hls import CNNS, compile_and_run
from tests.helpers.reference import naive_conv, random_conv

Pads = tuple[int, int, int, int]


@dataclasses.dataclass
class Window:
    """One template instance of the harness: a frame through a window block."""

    block: str  # "windows", "maxpool" or "streaming_maxpool"
    shape: tuple[int, int, int]  # H, W, C
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads
    lanes: int
    in_t: str
    frame: np.ndarray  # [H, W, C] codes

    @property
    def out_t(self) -> str:
        """The windows' type: TERNARY for padded BIPOLAR taps of a convolution."""
        widen = self.block == "windows" and self.in_t == "BIPOLAR" and any(self.pads)
        return "TERNARY" if widen else self.in_t

    @property
    def pad(self) -> int:
        """Convolutions pad with 0 (BIPOLAR too), pools with the type's minimum."""
        return 0 if self.block == "windows" else dtype(self.in_t).min

    def cpp(self, i: int) -> str:
        geometry = ", ".join(str(v) for v in (*self.shape, *self.kernel, *self.stride,
                                              *self.pads))
        values = ", ".join(str(int(v)) for v in self.frame.reshape(-1))
        return (f"  {{ static const int frame[] = {{{values}}};\n"
                f"    run<qflow::window_shape<{geometry}>, {self.lanes}, "
                f"{hls.cpp_type(dtype(self.in_t))}, {hls.cpp_type(dtype(self.out_t))}, "
                f"{self.pad}, Block::{self.block}>({i}, frame); }}")

    def reference(self) -> np.ndarray:
        """Plain loops over the padded frame: every window in (oy, ox) order, its taps in
        (ky, kx, c) order (windows), or each window's max per channel (pools)."""
        (h, w, c), (kh, kw), (sh, sw), (top, left, bottom, right) = \
            self.shape, self.kernel, self.stride, self.pads
        padded = np.full((h + top + bottom, w + left + right, c), self.pad, np.int64)
        padded[top:top + h, left:left + w] = self.frame
        oh = window_output(h, kh, sh, top, bottom)
        ow = window_output(w, kw, sw, left, right)
        out = []
        for oy in range(oh):
            for ox in range(ow):
                win = padded[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw]
                out.append(win.reshape(-1) if self.block == "windows" else win.max(axis=(0, 1)))
        return np.concatenate(out)


HARNESS = r"""
#include <cstdio>
#include "qflow.hpp"
enum class Block { windows, maxpool, streaming_maxpool };
template <Block B> struct block;  // the template under test (C++14: no if constexpr)
template <> struct block<Block::windows> {
  template <class G, unsigned L, class IT, class OT, int Pad, class I, class O>
  static void run(I& in, O& out) { qflow::sliding_window<G, L, IT, OT, Pad>(in, out); }
};
template <> struct block<Block::maxpool> {
  template <class G, unsigned L, class IT, class OT, int Pad, class I, class O>
  static void run(I& in, O& out) { qflow::maxpool<G, L, IT, Pad>(in, out); }
};
template <> struct block<Block::streaming_maxpool> {
  template <class G, unsigned L, class IT, class OT, int Pad, class I, class O>
  static void run(I& in, O& out) { qflow::streaming_maxpool<G, L, IT, Pad>(in, out); }
};

template <class G, unsigned Lanes, class IT, class OT, int Pad, Block B, unsigned N>
void run(int id, const int (&frame)[N]) {
  static_assert(N == G::H * G::W * G::C, "frame size");
  hls::stream<ap_uint<Lanes * IT::bits>> in("in");
  hls::stream<ap_uint<Lanes * OT::bits>> out("out");
  for (unsigned w = 0; w < N / Lanes; w++) {
    ap_uint<Lanes * IT::bits> word = 0;
    for (unsigned l = 0; l < Lanes; l++)
      qflow::set_field<IT::bits>(word, l, IT::encode(frame[w * Lanes + l]));
    in.write(word);
  }
  block<B>::template run<G, Lanes, IT, OT, Pad>(in, out);
  std::printf("%d %zu", id, in.size());
  while (!out.empty()) {
    const ap_uint<Lanes * OT::bits> word = out.read();
    for (unsigned l = 0; l < Lanes; l++)
      std::printf(" %lld", (long long)OT::decode(qflow::field<OT::bits>(word, l)));
  }
  std::printf("\n");
}
"""


def check_blocks(tmp_path: Path, cases: list[Window]) -> None:
    """Every case in one harness; each must consume its whole frame and emit the reference."""
    body = "\n".join(c.cpp(i) for i, c in enumerate(cases))
    # widest words: 64 lanes of 8 bits in the sweep
    out = compile_and_run(tmp_path, "#define AP_INT_MAX_W 1024\n" + HARNESS +
                          f"int main() {{\n{body}\n  return 0;\n}}\n")
    lines = out.splitlines()
    assert len(lines) == len(cases)
    for i, (case, line) in enumerate(zip(cases, lines, strict=True)):
        values = [int(v) for v in line.split()]
        assert values[:2] == [i, 0], f"case {i} {case.block}: {values[1]} input words left"
        got, ref = np.array(values[2:]), case.reference()
        assert got.shape == ref.shape and np.array_equal(got, ref), \
            f"case {i}: {case.block} {case.shape} k{case.kernel} s{case.stride} p{case.pads} " \
            f"lanes {case.lanes} {case.in_t}"


def random_window(rng: np.random.Generator, block: str, in_t: str) -> Window:
    """Kernels 1/3/5 (and rectangular), strides 1/2 (3 for pools), pads 0-2 per side
    (smaller than the kernel), odd and even sizes, lanes any divisor of the channels."""
    kh, kw = (int(k) for k in rng.choice([1, 3, 5], size=2)) if rng.random() < 0.3 else \
        (int(rng.choice([1, 2, 3, 5])),) * 2
    if block == "streaming_maxpool":
        sh, sw = kh, kw
    else:
        sh, sw = (int(s) for s in rng.choice([1, 2, 3] if block == "maxpool" else [1, 2], 2))
    pads = tuple(int(rng.integers(0, min(2, k - 1) + 1)) for k in (kh, kw, kh, kw))
    h = int(rng.integers(max(1, kh - pads[0] - pads[2]), 10))
    w = int(rng.integers(max(1, kw - pads[1] - pads[3]), 10))
    c = int(rng.choice([1, 2, 3, 5, 6, 7, 12]))
    lanes = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
    frame = synthetic.random_values(rng, dtype(in_t), (h, w, c))
    return Window(block, (h, w, c), (kh, kw), (sh, sw), pads, lanes, in_t, frame)  # type: ignore[arg-type]


def test_window_blocks_fixed_cases(tmp_path: Path) -> None:
    """Named corners: 1x1 with stride 2, a kernel as large as the padded frame, pads on one
    side only, BIPOLAR padded taps as 0 (windows) and never winning (pools: OR of bits)."""
    rng = np.random.default_rng(0)

    def case(block: str, shape: tuple[int, int, int], k: tuple[int, int], s: tuple[int, int],
             p: Pads, lanes: int, in_t: str) -> Window:
        return Window(block, shape, k, s, p, lanes, in_t,
                      synthetic.random_values(rng, dtype(in_t), shape))

    check_blocks(tmp_path, [
        case("windows", (5, 5, 3), (1, 1), (2, 2), (0, 0, 0, 0), 3, "UINT4"),
        case("windows", (3, 3, 2), (5, 5), (1, 1), (2, 2, 0, 0), 1, "INT3"),
        case("windows", (4, 7, 4), (3, 3), (1, 2), (0, 1, 2, 0), 2, "BIPOLAR"),
        case("windows", (4, 4, 8), (3, 3), (1, 1), (1, 1, 1, 1), 8, "BIPOLAR"),
        case("windows", (6, 6, 3), (3, 3), (2, 2), (0, 0, 0, 0), 1, "BIPOLAR"),
        case("maxpool", (7, 7, 6), (3, 3), (2, 2), (1, 1, 1, 1), 3, "BIPOLAR"),
        case("maxpool", (5, 8, 4), (2, 3), (1, 2), (0, 1, 1, 2), 4, "INT4"),
        case("streaming_maxpool", (7, 7, 4), (2, 2), (2, 2), (0, 0, 0, 0), 2, "UINT2"),
        case("streaming_maxpool", (5, 5, 2), (2, 2), (2, 2), (1, 1, 1, 1), 1, "BIPOLAR"),
        case("streaming_maxpool", (6, 9, 3), (3, 3), (3, 3), (2, 0, 0, 1), 3, "INT8"),
    ])


def test_window_blocks_random(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    types = ["BIPOLAR", "UINT2", "INT4", "UINT8"]
    check_blocks(tmp_path, [random_window(rng, block, str(rng.choice(types)))
                            for block in ("windows", "maxpool", "streaming_maxpool")
                            for _ in range(4)])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_window_blocks_sweep(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    types = ["BIPOLAR", "TERNARY", "UINT3", "INT5", "INT8"]
    check_blocks(tmp_path, [random_window(rng, str(rng.choice(
        ["windows", "maxpool", "streaming_maxpool"])), str(rng.choice(types)))
        for _ in range(20)])


def layer_model(layer: Layer, name: str = "one") -> Model:
    """A model of one spatial layer (not a valid whole IR: its output is a frame), as the
    HLS backend and the golden model run it."""
    h, w, c = layer.in_shape  # type: ignore[attr-defined]
    m = synthetic.random_cnn_model((c, h, w), layer.input_dtype.name,
                                   [{"dense": 2, "w": "INT2"}], name=name)
    return dataclasses.replace(m, layers=[layer])




# (input shape, C_out, kernel, stride, pad, input type, weight type, depthwise, PE, SIMD,
#  thresholds: else the accumulators leave the layer)
SLOW = pytest.mark.slow
CONVS = [
    pytest.param((6, 6, 4), 8, 3, 1, 1, "BIPOLAR", "BIPOLAR", False, 4, 2, True,
                 id="xnor-padded"),  # padded taps add 0
    pytest.param((6, 6, 4), 8, 3, 1, 1, "BIPOLAR", "BIPOLAR", False, 2, 4, False,
                 id="xnor-padded-acc", marks=SLOW),
    pytest.param((7, 5, 4), 6, 3, 2, 0, "BIPOLAR", "BIPOLAR", False, 3, 4, True,
                 id="xnor-popcount", marks=SLOW),
    pytest.param((7, 5, 4), 6, 3, 2, 0, "BIPOLAR", "BIPOLAR", False, 6, 1, False,
                 id="xnor-popcount-acc"),  # popcount mapped back to the sum
    pytest.param((5, 5, 3), 4, 5, 1, 2, "BIPOLAR", "INT4", False, 2, 3, False,
                 id="bipolar-taps-int-weights"),
    pytest.param((7, 7, 6), 5, 1, 2, 0, "UINT4", "TERNARY", False, 5, 2, True,
                 id="1x1-stride2", marks=SLOW),
    pytest.param((6, 5, 3), 4, 3, 2, 2, "UINT3", "INT3", False, 1, 1, False,
                 id="zero-point-pad"),  # the pad value is a random zero point
    pytest.param((5, 7, 6), 6, 3, 1, 1, "INT4", "INT2", True, 3, 1, True,
                 id="depthwise", marks=SLOW),
    pytest.param((6, 6, 4), 4, 3, 2, 1, "BIPOLAR", "BIPOLAR", True, 2, 1, False,
                 id="depthwise-xnor-padded"),
    # pads as wide as the kernel: windows of padding only (the pad value's accumulator)
    pytest.param((4, 5, 3), 4, 1, 1, 2, "UINT3", "INT3", False, 2, 3, False,
                 id="wide-pads-1x1"),
    pytest.param((5, 4, 4), 4, 3, 2, 3, "BIPOLAR", "BIPOLAR", False, 2, 2, False,
                 id="wide-pads-xnor"),
    pytest.param((4, 4, 4), 4, 3, 1, 4, "INT4", "INT2", True, 2, 1, True,
                 id="wide-pads-depthwise"),
]


@pytest.mark.parametrize(("shape", "co", "k", "s", "p", "in_t", "w_t", "dw", "pe", "simd",
                          "thresholds"), CONVS)
def test_conv_layer(tmp_path: Path, shape: tuple[int, int, int], co: int, k: int, s: int,
                    p: int, in_t: str, w_t: str, dw: bool, pe: int, simd: int,
                    thresholds: bool) -> None:
    """One convolution (input shape, C_out, kernel, stride, pad, types, depthwise, folding):
    thresholds (its codes) or none (its accumulators, XNOR popcounts mapped back to sums)
    against the naive loops and the golden model."""
    rng = np.random.default_rng(sum(shape) + co + k)
    layer = dataclasses.replace(random_conv(rng, shape, co, k, s, p, in_t, w_t, dw, thresholds),
                                folding=Folding(pe, simd))
    model = layer_model(layer)
    model.layers[0].check("test")
    codes = synthetic.random_codes(model, 30, seed=k)
    out = hls.run(model, tmp_path, codes)
    assert np.array_equal(out, golden.run_codes(model, codes))
    if not thresholds:
        assert np.array_equal(out, naive_conv(codes, layer).reshape(len(codes), -1))


@pytest.mark.parametrize("name", list(CNNS))
def test_random_cnn_equals_golden(tmp_path: Path, name: str) -> None:
    model = synthetic.random_cnn_model(*CNNS[name], seed=3, name=name)
    model = random_folding(model, np.random.default_rng(len(name)))
    codes = synthetic.random_codes(model, 40)
    # through the backend registry, as `qflow run` and `qflow verify` call it
    assert np.array_equal(backends.run("hls", model, tmp_path, codes),
                          golden.run_codes(model, codes))


@pytest.mark.parametrize("rounding", ["half_even", "tflite"])
@pytest.mark.parametrize("name", ["padded_mixed", "bipolar_padded_dw"])
def test_requantized_cnn_equals_golden(tmp_path: Path, name: str, rounding: str) -> None:
    """Multi-bit convolutions requantized (MVAU, and VVAU for the depthwise one) beside
    thresholded ones, in each rounding, with the extreme channels requantize_hidden draws."""
    model = synthetic.random_cnn_model(*CNNS[name], seed=3, name=name)
    model = random_folding(model, np.random.default_rng(len(name)))
    model = synthetic.requantize_hidden(model, seed=4, rounding=rounding)
    codes = synthetic.random_codes(model, 40)
    assert np.array_equal(hls.run(model, tmp_path, codes), golden.run_codes(model, codes))


def random_cnn_spec(rng: np.random.Generator) -> tuple[tuple[int, int, int], str,
                                                       list[dict[str, Any]]]:
    types = ["BIPOLAR", "TERNARY", "INT2", "UINT2", "INT4", "UINT3"]
    c, h = int(rng.integers(1, 5)), int(rng.integers(6, 14))
    layers: list[dict[str, Any]] = []
    size = h
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.3 and size >= 4:
            k = int(rng.choice([2, 3]))
            s = int(rng.choice([1, 2, k]))
            p = int(rng.integers(0, k))
            layers.append({"pool": k, "stride": s, "pad": p})
            size = window_output(size, k, s, p, p)
            continue
        k = int(rng.choice([1, 3, 5])) if size >= 5 else 1
        s, p = int(rng.choice([1, 2])), int(rng.integers(0, min(2, k - 1) + 1))
        layers.append({"conv": int(rng.integers(1, 9)), "k": k, "stride": s, "pad": p,
                       "w": str(rng.choice(types)), "act": str(rng.choice(types)),
                       "depthwise": bool(rng.random() < 0.2)})
        size = window_output(size, k, s, p, p)
    layers.append({"dense": int(rng.integers(2, 8)), "w": str(rng.choice(types))})
    return (c, h, h), str(rng.choice(types)), layers


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16))
def test_random_cnn_sweep(tmp_path: Path, seed: int) -> None:
    """Random depths, kernels, strides, pads, pools, depthwise layers, types and folding;
    multi-bit activations as thresholds or requantized in either rounding."""
    rng = np.random.default_rng(seed)
    model = synthetic.random_cnn_model(*random_cnn_spec(rng), seed=seed, name=f"cnn{seed}")
    model = random_folding(model, rng)
    rounding = (None, "half_even", "tflite")[seed % 3]
    if rounding is not None:
        model = synthetic.requantize_hidden(model, seed, rounding=rounding)
    codes = synthetic.random_codes(model, 30, seed)
    assert np.array_equal(hls.run(model, tmp_path, codes), golden.run_codes(model, codes))


def test_generated_cnn_top(tmp_path: Path) -> None:
    """The top wires window generators, MVAUs, VVAUs and pools as the IR says; hls.json's
    rows give each layer's cycles."""
    model = synthetic.random_cnn_model(*CNNS["bipolar_padded_dw"], seed=1, name="net")
    top = (hls.generate(model, tmp_path) / "net_top.cpp").read_text()
    assert "qflow::sliding_window<shape, 1, qflow::bipolar, qflow::int_t<2>, 0>" in top
    assert "qflow::sliding_window<shape, 1, qflow::bipolar, qflow::bipolar, 0>" in top  # 1x1
    assert "qflow::window_shape<7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1>" in top
    assert "qflow::maxpool<shape, 1, qflow::bipolar, -1>" in top  # pads: the general pool
    assert "qflow::vvau<9, 6, 1, qflow::int_t<2>, qflow::int_t<2>, " in top  # padded BIPOLAR
    rows = [s.report() for s in hls.stages(model)]
    assert rows[0]["datapath"] == "add-sub (BIPOLAR taps as -1/+1, padded 0)"
    assert rows[2]["datapath"] == "xnor-popcount" and rows[1]["datapath"] == "or"
    assert rows[0]["cycles"] == model.layers[0].cycles


def test_streaming_pool_when_kernel_is_stride(tmp_path: Path) -> None:
    model = synthetic.random_cnn_model(*CNNS["cnv_w1a1"], seed=1, name="net")
    top = (hls.generate(model, tmp_path) / "net_top.cpp").read_text()
    assert "qflow::streaming_maxpool<shape, 1, qflow::bipolar, -1>" in top
    assert "qflow::maxpool<" not in top


def test_conv_too_wide_names_the_layer(tmp_path: Path) -> None:
    layer: Conv2dLayer = random_conv(np.random.default_rng(0), (4, 4, 2), 2, 3, 1, 1,
                                     "INT16", "INT16", thresholds=False)
    with pytest.raises(ValueError, match=r"layer 0 \(conv, from test\): accumulator of \d+ "
                                         r"bits; the HLS templates support at most 32"):
        hls.stage(layer, 0)
