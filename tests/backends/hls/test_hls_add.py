"""The residual blocks' HLS templates under g++: qflow::fork (hls/qflow_stream.hpp) against
the identity, and qflow::add_layer (hls/qflow_add.hpp) against golden's activation of
WA * a + WB * b (flow.golden.requant.prepare_activation). The add takes its activation as
the dense stage generates a dense layer's (flow.backends.hls.dense: struct and parameter
header), for a stand-in layer of the add's channels, folding and accumulator bounds.

Each test compiles one harness of many instantiations (a compile costs seconds, a case
microseconds); every call consumes one frame of two in the streams."""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from flow import synthetic
from flow.backends import hls
from flow.backends.hls import cpp_type, dense, vendor
from flow.datatypes import DataType, dtype
from flow.golden.requant import prepare_activation
from flow.ir import Activation, DenseLayer, Folding, Thresholds
from tests.helpers.hls import compile_and_run

CHANNELS, PIXELS, FRAMES = 8, 6, 2
PES = (1, 2, 4)
INPUTS = (("UINT8", "INT8"), ("INT4", "INT4"))
WEIGHTS = ((1, 1), (2, 1), (1, -1))
FORMS = {"thresholds": "UINT3", "half_even": "INT8", "tflite": "UINT4"}  # -> output type
# (activation form, integer types): one form on Xilinx's types among the fast tests
ADD_RUNS = [*((form, "fallback") for form in FORMS), ("thresholds", "vendor"),
            *(pytest.param(form, "vendor", marks=pytest.mark.slow)
              for form in ("half_even", "tflite"))]
# (word bits, outputs) of the forks: one byte, several, wider than 64 bits
FORKS = [(8, 2), (24, 3), (96, 2), (96, 4)]
FORK_WORDS = 5  # a frame


def include_for(types: str) -> Path | None:
    """Xilinx's include folder for "vendor" (skips when not installed), None: fallback."""
    if types == "fallback":
        return None
    include = vendor.installed()
    if include is None:
        pytest.skip(f"Xilinx's ap_int.h / hls_stream.h are not installed ({vendor.AP_TYPES})")
    return include


def acc_bounds(a_t: DataType, b_t: DataType, wa: int, wb: int) -> tuple[int, int]:
    ends = [wa * x + wb * y for x in (a_t.min, a_t.max) for y in (b_t.min, b_t.max)]
    return min(ends), max(ends)


def activation_layer(act: Activation | None, bounds: tuple[int, int], pe: int) -> DenseLayer:
    """A dense layer standing in for the add where the dense stage reads one: its channels,
    folding, accumulator bounds and activation (its weights and input type unused)."""
    t = dtype("INT2")
    return DenseLayer(name="add", source="test", in_features=1, out_features=CHANNELS,
                      input_dtype=t, weight_dtype=t, weights=np.ones((CHANNELS, 1), np.int64),
                      acc_min=bounds[0], acc_max=bounds[1], activation=act,
                      folding=Folding(pe, 1))


@dataclass(frozen=True)
class AddCase:
    a_t: DataType
    b_t: DataType
    wa: int
    wb: int
    pe: int
    act: Activation
    a: np.ndarray  # codes [FRAMES * PIXELS, CHANNELS], channel-last
    b: np.ndarray

    @property
    def expected(self) -> np.ndarray:
        return prepare_activation(self.act, np.int64)(self.wa * self.a + self.wb * self.b)


def random_activation(rng: np.random.Generator, form: str, bounds: tuple[int, int],
                      acc: np.ndarray) -> Activation:
    """Thresholds, half of them accumulators that occur (ties) and half anywhere from one
    below the bounds to one above; or a random requantization in rounding `form`."""
    out_t = dtype(FORMS[form])
    lo, hi = bounds
    if form == "thresholds":
        base, step, k = synthetic.activation_for(out_t)
        seen = np.stack([rng.choice(acc[:, c], size=k // 2) for c in range(CHANNELS)])
        anywhere = rng.integers(lo - 1, hi + 2, size=(CHANNELS, k - k // 2))
        act: Activation = Thresholds(values=np.sort(np.hstack([seen, anywhere]), axis=1),
                                     base=base, step=step, out_dtype=out_t)
    else:
        act = synthetic.random_requant(rng, activation_layer(None, bounds, 1), out_t, form)
        act.check_range("add", lo, hi)
    act.check("add", CHANNELS)
    return act


def random_case(seed: int, types: tuple[str, str], weights: tuple[int, int], pe: int,
                form: str) -> AddCase:
    """Random codes, the first four pixels every pair of the types' ends (both accumulator
    bounds, whatever the weights' signs)."""
    rng = np.random.default_rng(seed)
    a_t, b_t = dtype(types[0]), dtype(types[1])
    shape = (FRAMES * PIXELS, CHANNELS)
    a, b = synthetic.random_values(rng, a_t, shape), synthetic.random_values(rng, b_t, shape)
    a[:4] = np.array([a_t.min, a_t.min, a_t.max, a_t.max])[:, None]
    b[:4] = np.array([b_t.min, b_t.max, b_t.min, b_t.max])[:, None]
    wa, wb = weights
    act = random_activation(rng, form, acc_bounds(a_t, b_t, wa, wb), wa * a + wb * b)
    return AddCase(a_t, b_t, wa, wb, pe, act, a, b)


ADD_PRELUDE = r"""#include <cstdio>
#include "qflow_add.hpp"
template <unsigned PE, class T, unsigned N>
void push(hls::stream<ap_uint<PE * T::bits>>& s, const long long (&codes)[N]) {
  for (unsigned w = 0; w < N / PE; w++) {
    ap_uint<PE * T::bits> word = 0;
    for (unsigned pe = 0; pe < PE; pe++)
      qflow::set_field<T::bits>(word, pe, T::encode(codes[w * PE + pe]));
    s.write(word);
  }
}
template <unsigned PE, class T>
void print_codes(hls::stream<ap_uint<PE * T::bits>>& s) {
  while (!s.empty()) {
    const ap_uint<PE * T::bits> word = s.read();
    for (unsigned pe = 0; pe < PE; pe++)
      std::printf(" %lld", (long long)T::decode(qflow::field<T::bits>(word, pe)));
  }
}
"""


def case_function(k: int, case: AddCase, s: dense.DenseStage) -> str:
    """case<k>(): push both frames, one add_layer call a frame, print the output codes
    ("PROTOCOL" where a call took or gave other than one frame)."""
    words = PIXELS * CHANNELS // case.pe
    at, bt, ot = cpp_type(case.a_t), cpp_type(case.b_t), s.out_type
    a, b = (", ".join(str(int(v)) for v in x.ravel()) for x in (case.a, case.b))
    return f"""
static void case{k}() {{
#include "{s.params_file}"
  (void){s.name}_weights;
  static const long long a[] = {{{a}}}, b[] = {{{b}}};
  hls::stream<ap_uint<{case.pe} * {at}::bits>> as("a");
  hls::stream<ap_uint<{case.pe} * {bt}::bits>> bs("b");
  hls::stream<ap_uint<{case.pe} * {ot}::bits>> out("out");
  push<{case.pe}, {at}>(as, a);
  push<{case.pe}, {bt}>(bs, b);
  std::printf("case {k}:");
  for (unsigned frame = 0; frame < {FRAMES}; frame++) {{
    qflow::add_layer<{CHANNELS}, {case.pe}, {PIXELS}, {at}, {bt}, {case.wa}, {case.wb}>(
        as, bs, out, {s.name}_act);
    const unsigned left = ({FRAMES} - 1 - frame) * {words};
    if (as.size() != left || bs.size() != left || out.size() != {words})
      std::printf(" PROTOCOL");
    print_codes<{case.pe}, {ot}>(out);
  }}
  std::printf("\\n");
}}
"""


def run_cases(tmp_path: Path, cases: list[AddCase], include: Path | None) -> list[np.ndarray]:
    """Each case's output codes [FRAMES * PIXELS, CHANNELS] from one compiled harness."""
    functions = []
    for k, case in enumerate(cases):
        s = dense.stage(activation_layer(case.act, acc_bounds(case.a_t, case.b_t, case.wa,
                                                              case.wb), case.pe), k)
        (tmp_path / s.params_file).write_text(dense.params_header(s))
        functions.append(case_function(k, case, s))
    calls = "".join(f"  case{k}();\n" for k in range(len(cases)))
    source = ADD_PRELUDE + "".join(functions) + f"int main() {{\n{calls}  return 0;\n}}\n"
    out = compile_and_run(tmp_path, source, f"-I{tmp_path}", vendor_include=include)
    lines = out.splitlines()
    assert len(lines) == len(cases), out[-2000:]
    results = []
    for k, line in enumerate(lines):
        head, _, codes = line.partition(":")
        assert head == f"case {k}" and "PROTOCOL" not in codes, f"case {k}: {line[:200]}"
        results.append(np.array(codes.split(), np.int64).reshape(FRAMES * PIXELS, CHANNELS))
    return results


def check_cases(tmp_path: Path, cases: list[AddCase], types: str) -> None:
    for case, out in zip(cases, run_cases(tmp_path, cases, include_for(types)), strict=True):
        ref = case.expected
        bad = [(int(p), int(c), int(out[p, c]), int(ref[p, c]))
               for p, c in np.argwhere(out != ref)[:5]]
        assert not bad, (f"{case.a_t}+{case.b_t}, weights ({case.wa}, {case.wb}), PE {case.pe}:"
                         f" first (pixel, channel, hls, golden) {bad}")


@pytest.mark.parametrize(("form", "types"), ADD_RUNS)
def test_add_layer(tmp_path: Path, form: str, types: str) -> None:
    """Every PE, input type mix and pair of weights in one activation form."""
    cases = [random_case(k, inputs, weights, pe, form)
             for k, (inputs, weights, pe) in enumerate(itertools.product(INPUTS, WEIGHTS, PES))]
    check_cases(tmp_path, cases, types)


@pytest.mark.parametrize(("a_t", "b_t", "channels", "pe", "refusal"), [
    ("qflow::int_t<4>", "qflow::uint_t<8>", 8, 4, None),  # the harness compiles as it is
    ("qflow::bipolar", "qflow::int_t<4>", 8, 2, "BIPOLAR inputs are not supported"),
    ("qflow::int_t<4>", "qflow::int_t<4>", 6, 4, "PE must divide the channels"),
    ("qflow::int_t<32>", "qflow::uint_t<1>", 4, 1, "accumulators wider than 32 bits"),
], ids=["control", "bipolar", "pe", "width"])
def test_add_layer_refuses(a_t: str, b_t: str, channels: int, pe: int,
                           refusal: str | None) -> None:
    """BIPOLAR inputs, a PE that does not divide the channels and an accumulator over 32
    bits stop the compile with their reasons."""
    source = f"""#include "qflow_add.hpp"
using AT = {a_t};
using BT = {b_t};
void top(hls::stream<ap_uint<{pe} * AT::bits>>& a, hls::stream<ap_uint<{pe} * BT::bits>>& b,
         hls::stream<ap_uint<{pe} * 8>>& out) {{
  qflow::add_layer<{channels}, {pe}, 1, AT, BT, 1, 1>(a, b, out,
                                                      qflow::accumulator_out<8, 1, 0>{{}});
}}
"""
    r = subprocess.run([hls.CXX, *hls.CXXFLAGS, "-fsyntax-only", f"-I{hls.template_dir()}",
                        "-x", "c++", "-"], input=source, capture_output=True, text=True)
    if refusal is None:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode and refusal in r.stderr, r.stderr


FORK_RUN = r"""#include <cstdio>
#include "qflow_stream.hpp"
// Words words a frame, every frame in the input first; one fork call a frame; each output's
// words as bytes ("PROTOCOL" where a call took or gave other than one frame).
template <unsigned W, unsigned N, unsigned Words, unsigned Count>
void run(const unsigned char (&bytes)[Count]) {
  constexpr unsigned B = W / 8, Frames = Count / (B * Words);
  hls::stream<ap_uint<W>> in("in");
  hls::stream<ap_uint<W>> out[N];
  for (unsigned w = 0; w < Count / B; w++) {
    ap_uint<W> word = 0;
    for (unsigned i = 0; i < B; i++) qflow::set_field<8>(word, i, ap_uint<8>(bytes[w * B + i]));
    in.write(word);
  }
  for (unsigned f = 0; f < Frames; f++) {
    qflow::fork<Words>(in, out);
    bool one_frame = in.size() == (Frames - 1 - f) * Words;
    for (unsigned k = 0; k < N; k++) one_frame &= out[k].size() == (f + 1) * Words;
    if (!one_frame) std::printf("PROTOCOL %u %u\n", W, N);
  }
  for (unsigned k = 0; k < N; k++) {
    std::printf("%u %u %u:", W, N, k);
    while (!out[k].empty()) {
      const ap_uint<W> word = out[k].read();
      for (unsigned i = 0; i < B; i++) std::printf(" %u", unsigned(qflow::field<8>(word, i)));
    }
    std::printf("\n");
  }
}
"""


@pytest.mark.parametrize("types", ["fallback", "vendor"])
def test_fork_delivers_every_word_to_every_output(tmp_path: Path, types: str) -> None:
    """Random words, two frames in the input: each call takes one frame and every output
    holds it, in order."""
    rng = np.random.default_rng(0)
    data = {(bits, n): rng.integers(0, 256, size=(FRAMES * FORK_WORDS, bits // 8)).ravel()
            for bits, n in FORKS}
    arrays = "".join(f"static const unsigned char bytes{bits}_{n}[] = "
                     f"{{{', '.join(str(int(v)) for v in data[bits, n])}}};\n"
                     for bits, n in FORKS)
    calls = "".join(f"  run<{bits}, {n}, {FORK_WORDS}>(bytes{bits}_{n});\n"
                    for bits, n in FORKS)
    source = FORK_RUN + arrays + f"int main() {{\n{calls}  return 0;\n}}\n"
    out = compile_and_run(tmp_path, source, vendor_include=include_for(types))
    expected = [f"{bits} {n} {k}: " + " ".join(str(int(v)) for v in data[bits, n])
                for bits, n in FORKS for k in range(n)]
    assert out.splitlines() == expected
