"""The generated dataflow top: `<model>_top.hpp/.cpp`, one process per layer.

Model-level only: each layer's stage (flow.backends.hls.ops) declares its own function and
files; the top wires their streams as the IR's graph says (`Model.inputs_of`): one stream
per edge, a fork (hls/qflow_stream.hpp) where a tensor has several readers (one stream per
reader), and a width converter (hls/qflow_dwc.hpp) on an edge whose words hold different
numbers of elements at its ends.
"""

from __future__ import annotations

from typing import NamedTuple

from flow.backends.hls.cpp import AP_INT_MAX_W, stream_word
from flow.backends.hls.ops import LayerStage
from flow.ir import MODEL_INPUT, Model

CHAIN_DEPTH = 2  # a stream between a producer and its only reader

VENDOR_DEFAULT_MAX_W = 1024  # ap_uint's width limit unless AP_INT_MAX_W raises it


def widest_word(name: str, stages: list[LayerStage]) -> int:
    """The widest ap_uint any stage declares; a ValueError naming the layer, the word and
    its file when one is wider than Vitis allows."""
    widest = 0
    for s in stages:
        for w in s.words():
            if w.bits > AP_INT_MAX_W:
                raise ValueError(f"HLS: {s.label}: {w.what} of {w.bits} bits in "
                                 f"{w.file or f'{name}_top.cpp'}; Vitis' ap_uint holds at most "
                                 f"{AP_INT_MAX_W}: lower PE or SIMD")
            widest = max(widest, w.bits)
    return widest


class Tensor(NamedTuple):
    """What one stream carries: a layer's output or the model's input, a frame at a time."""

    name: str  # a layer's IR name, or MODEL_INPUT
    stream: str  # the C++ stream its producer writes
    elems: int  # elements per word
    type: str  # qflow type of the elements
    features: int  # elements per frame

    @property
    def word(self) -> str:
        return stream_word(self.elems, self.type)

    @property
    def words(self) -> int:
        """Words per frame."""
        return self.features // self.elems


def fork_edge_depth(tensor: Tensor) -> int:
    """The depth of each edge from a fork of `tensor` to one of its readers: one whole
    frame of the tensor's words.

    Enough for the pipeline never to deadlock: the fork writes each word to every reader's
    FIFO and stalls while one of them is full; the branches meet again at a join (an add),
    which reads one word of each input together. A branch's output for a frame depends on
    that frame's input only, so while the join waits for the main branch's next word, the
    fork needs to push at most the rest of that frame into the skip path's FIFO before the
    main branch has all it needs to deliver: at most one frame, which the FIFO holds
    without stalling the fork."""
    # the RTL's cycle-model depths (a later change) will tighten this per edge
    return tensor.words


def graph_body(model: Model, stages: list[LayerStage]) -> list[str]:
    """The top's statements: each stage called with its input streams in `inputs_of`
    order, after the forks and width converters its edges need."""
    first = stages[0]
    edges: dict[str, list[tuple[int, int]]] = {}  # tensor -> its (reader, input) edges
    for i in range(len(stages)):
        for k, read in enumerate(model.inputs_of(i)):
            edges.setdefault(read, []).append((i, k))
    tensors = {MODEL_INPUT: Tensor(MODEL_INPUT, "in0", first.in_elems, first.in_type,
                                   first.in_features)}
    feeds: dict[tuple[int, int], str] = {}  # edge -> the stream that carries it
    body: list[str] = []

    def deliver(t: Tensor) -> None:
        readers = edges.get(t.name, [])
        if len(readers) == 1:
            feeds[readers[0]] = t.stream
            return
        if readers:
            fork = f"{t.stream}_fork"
            body.extend([f"  hls::stream<{t.word}> {fork}[{len(readers)}];",
                         f"  QFLOW_HLS(STREAM variable={fork} depth={fork_edge_depth(t)})",
                         f"  qflow::fork<{t.words}>({t.stream}, {fork});"])
            feeds.update({edge: f"{fork}[{r}]" for r, edge in enumerate(readers)})

    deliver(tensors[MODEL_INPUT])
    for i, s in enumerate(stages):
        reads = model.inputs_of(i)
        srcs = []
        for k, read in enumerate(reads):
            t, src = tensors[read], feeds[i, k]
            if t.elems != s.in_elems:
                dst = f"{s.name}_in" if len(reads) == 1 else f"{s.name}_in{k}"
                body += [f"  hls::stream<{stream_word(s.in_elems, t.type)}> {dst}(\"{dst}\");",
                         f"  QFLOW_HLS(STREAM variable={dst} depth={CHAIN_DEPTH})",
                         f"  qflow::dwc<{t.elems}, {s.in_elems}, {t.type}::bits, "
                         f"{t.features}>({src}, {dst});"]
                src = dst
            srcs.append(src)
        dst = "out0" if i == len(stages) - 1 else f"{s.name}_out"
        if dst != "out0":
            body += [f"  hls::stream<{stream_word(s.out_elems, s.out_type)}> {dst}(\"{dst}\");",
                     f"  QFLOW_HLS(STREAM variable={dst} depth={CHAIN_DEPTH})"]
        body.append(f"  {s.name}({', '.join(srcs)}, {dst});")
        name = model.layers[i].name
        tensors[name] = Tensor(name, dst, s.out_elems, s.out_type, s.out_features)
        deliver(tensors[name])
    return body


def top_sources(name: str, model: Model, stages: list[LayerStage]) -> dict[str, str]:
    """`<name>_top.hpp/.cpp`: one dataflow process per layer, forks and width converters
    on the graph's edges, AXI-Stream ports, free-running control."""
    first, last = stages[0], stages[-1]
    in_word, out_word = (stream_word(first.in_elems, first.in_type),
                         stream_word(last.out_elems, last.out_type))
    guard = f"{name.upper()}_TOP_HPP"
    widest = widest_word(name, stages)
    # the vendor's default limit must be raised before ap_int.h is included
    width_limit = f"#define AP_INT_MAX_W {widest}\n" if widest > VENDOR_DEFAULT_MAX_W else ""
    hpp = f"""// Generated by qflow: the {name} accelerator's top function (Vitis HLS).
#ifndef {guard}
#define {guard}

{width_limit}#include "qflow.hpp"

namespace {name}_io {{
using in_type = {first.in_type};
using out_type = {last.out_type};
constexpr unsigned in_features = {first.in_features}, in_elems = {first.in_elems};
constexpr unsigned out_features = {last.out_features}, out_elems = {last.out_elems};
using in_word = {in_word};
using out_word = {out_word};
}}  // namespace {name}_io

// One input vector in ({first.in_features // first.in_elems} words), \
its {last.out_features} outputs out ({last.out_features // last.out_elems} words).
void {name}_top(hls::stream<{name}_io::in_word>& in0, hls::stream<{name}_io::out_word>& out0);

#endif  // {guard}
"""
    body = graph_body(model, stages)
    cpp = f"""// Generated by qflow: the {name} accelerator, one dataflow stage per layer.
#include "{name}_top.hpp"

{chr(10).join(s.function() for s in stages)}
void {name}_top(hls::stream<{name}_io::in_word>& in0, hls::stream<{name}_io::out_word>& out0) {{
  QFLOW_HLS(INTERFACE axis port=in0)
  QFLOW_HLS(INTERFACE axis port=out0)
  QFLOW_HLS(INTERFACE ap_ctrl_none port=return)
  QFLOW_HLS(DATAFLOW)
{chr(10).join(body)}
}}
"""
    return {f"{name}_top.hpp": hpp, f"{name}_top.cpp": cpp}
