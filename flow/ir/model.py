"""The model: input stage, layers of registered kinds as a graph, output stage; written as
ir.json/ir.npz (read back by flow.ir.files)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from flow.atomic import write_with
from flow.datatypes import DataType
from flow.ir.add import AddLayer
from flow.ir.conv import Conv2dLayer
from flow.ir.dense import DenseLayer
from flow.ir.layer import IRError, Layer
from flow.ir.pool import AvgPoolLayer, MaxPoolLayer

SCHEMA = "qflow.ir/3"  # 3: a graph (every layer names its inputs)
MAX_CODE_BITS = 32  # inputs, weights and activations: what a QONNX Quant of 1..32 bits makes
ELEMENTWISE_OPS = ("mul", "div", "add", "sub")

# Every layer kind the IR knows: kind -> class with from_json (adding an op adds one here).
LAYER_KINDS: dict[str, Any] = {k.kind: k for k in (DenseLayer, Conv2dLayer, MaxPoolLayer,
                                                 AvgPoolLayer, AddLayer)}
MODEL_INPUT = "input"  # the name a layer reading the input stage's codes gives its input

T = TypeVar("T")


def kind_registry(modules: Iterable[ModuleType], stage: str) -> dict[str, ModuleType]:
    """A stage's kind -> module map, from each module's KINDS (the IR layer classes it
    handles): one key per kind, the IR's own, so a kind is named once; a module naming a
    class the IR does not know, or two modules one kind, fail at import."""
    registry: dict[str, ModuleType] = {}
    for m in modules:
        for layer_class in m.KINDS:
            kind = str(layer_class.kind)
            if LAYER_KINDS.get(kind) is not layer_class or kind in registry:
                raise TypeError(f"{stage}: {m.__name__} registers {layer_class.__name__}, which "
                                "the IR does not know or another module already handles")
            registry[kind] = m
    return registry


def op_for(registry: Mapping[str, T], layer: Layer, stage: str) -> T:
    """The stage's module (or object) for this layer's kind; an IRError naming the layer and
    the stage when the stage does not handle that kind."""
    if layer.kind not in registry:
        raise IRError(f"layer {layer.name} (from {layer.source or '?'}): kind {layer.kind!r} is "
                      f"not supported by {stage} (it handles: {', '.join(sorted(registry))})")
    return registry[layer.kind]


@dataclass
class ElementwiseOp:
    """One float32 op with a constant: x = x <op> value (IEEE single, in this order)."""

    op: str
    value: np.ndarray

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        fn = {"mul": np.multiply, "div": np.divide, "add": np.add, "sub": np.subtract}.get(self.op)
        if fn is None:
            raise IRError(f"unknown elementwise op {self.op!r}")
        return fn(x, self.value.astype(np.float32, copy=False), out=out, dtype=np.float32)


@dataclass
class InputStage:
    """Float input (as the QONNX graph takes it) -> integer codes of the first layer.

    `kind` is "int" (QONNX Quant: code = round_half_even(clip(x / scale + zero_point)))
    or "bipolar" (BipolarQuant: code = +1 if x >= 0 else -1). With `channels_last`, the
    graph's (C, H, W) input leaves as codes in (H, W, C) order, the order of every frame
    between layers (see flow/ir/conv.py).
    """

    shape: tuple[int, ...]
    preprocess: list[ElementwiseOp]
    kind: str
    scale: float
    zero_point: float
    bitwidth: int
    signed: bool
    narrow: bool
    out_dtype: DataType
    channels_last: bool = False

    @property
    def features(self) -> int:
        return int(np.prod(self.shape))

    @property
    def code_range(self) -> tuple[int, int]:
        if self.kind == "bipolar":
            return -1, 1
        if self.signed:
            lo = -(2 ** (self.bitwidth - 1)) + (1 if self.narrow else 0)
            return lo, 2 ** (self.bitwidth - 1) - 1
        return 0, 2**self.bitwidth - (2 if self.narrow else 1)

    def check(self, at: str) -> None:
        if self.kind not in ("int", "bipolar"):
            raise IRError(f"{at}: input kind {self.kind!r} (int or bipolar)")
        if self.kind == "int" and (not np.isfinite(self.scale) or self.scale <= 0):
            raise IRError(f"{at}: input scale {self.scale} must be positive and finite")
        if not np.isfinite(self.zero_point) or self.zero_point != round(self.zero_point):
            raise IRError(f"{at}: input zero point {self.zero_point} must be an integer")
        lo, hi = self.code_range
        if not self.out_dtype.contains(lo, hi):
            raise IRError(f"{at}: input codes {lo}..{hi} do not fit {self.out_dtype}")
        if not 1 <= self.bitwidth <= MAX_CODE_BITS:
            raise IRError(f"{at}: input bit width {self.bitwidth} (1..{MAX_CODE_BITS})")
        for k, op in enumerate(self.preprocess):
            if not np.all(np.isfinite(op.value)):
                raise IRError(f"{at}: preprocessing op {k} ({op.op}) has non-finite values")
        if self.channels_last and len(self.shape) != 3:
            raise IRError(f"{at}: channel-last codes need a (C, H, W) input, not {self.shape}")


@dataclass
class OutputStage:
    """Last layer's accumulators -> the graph's output: ops(f32((acc - offset) * scale))."""

    acc_offset: np.ndarray  # int64 [C]
    acc_scale: np.ndarray  # float64 [C]
    ops: list[ElementwiseOp]
    shape: tuple[int, ...]


@dataclass
class Model:
    name: str
    input: InputStage
    layers: list[Layer]
    output: OutputStage
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    # the graph: layer name -> the names of the layers (or MODEL_INPUT) it reads, in order;
    # a layer not named reads the layer before it (a chain)
    inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def initiation_interval(self) -> int:
        """Cycles between frames in steady state: the slowest layer's."""
        return max(layer.cycles for layer in self.layers)

    def inputs_of(self, i: int) -> tuple[str, ...]:
        """The names of what layer i reads: earlier layers, or MODEL_INPUT."""
        layer = self.layers[i]
        if layer.name in self.inputs:
            return self.inputs[layer.name]
        return (self.layers[i - 1].name if i else MODEL_INPUT,)

    @property
    def is_chain(self) -> bool:
        """Every layer reads the one before it (the first, the input stage)."""
        return all(self.inputs_of(i) == ((self.layers[i - 1].name,) if i else (MODEL_INPUT,))
                   for i in range(len(self.layers)))

    def consumers(self) -> dict[str, list[str]]:
        """Name (a layer's or MODEL_INPUT) -> the layers that read it, in order."""
        out: dict[str, list[str]] = {MODEL_INPUT: [], **{lay.name: [] for lay in self.layers}}
        for i, layer in enumerate(self.layers):
            for name in self.inputs_of(i):
                out.setdefault(name, []).append(layer.name)
        return out

    def validate(self, where: str = "IR") -> None:
        """Raise IRError naming the layer when the graph, shapes, types or bounds disagree."""
        self.input.check(f"{where}: input")
        if not self.layers:
            raise IRError(f"{where}: no layers")
        # what each name gives: (values per frame, datatype, (H, W, C) or None for flat)
        given: dict[str, tuple[int, DataType, tuple[int, ...] | None]] = {
            MODEL_INPUT: (self.input.features, self.input.out_dtype,
                          self.input.shape[1:] + self.input.shape[:1]
                          if self.input.channels_last else None)}
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names) or MODEL_INPUT in names:
            raise IRError(f"{where}: layer names must be unique and not {MODEL_INPUT!r}")
        unknown = sorted(set(self.inputs) - set(names))
        if unknown:
            raise IRError(f"{where}: inputs given for layers that do not exist: {unknown}")
        for i, layer in enumerate(self.layers):
            at = f"{where}: layer {i} ({layer.name}, from {layer.source})"
            op_for(LAYER_KINDS, layer, "the IR")
            reads = self.inputs_of(i)
            if len(reads) != getattr(layer, "arity", 1):
                raise IRError(f"{at}: reads {len(reads)} inputs {list(reads)}; a {layer.kind} "
                              f"layer reads {getattr(layer, 'arity', 1)}")
            dtypes = getattr(layer, "input_dtypes", (layer.input_dtype,))
            for name, want in zip(reads, dtypes, strict=True):
                if name not in given:
                    raise IRError(f"{at}: reads {name!r}, which is no earlier layer (layers are "
                                  "stored in a topological order: a cycle, or an input that "
                                  "does not exist)")
                width, prev, shape = given[name]
                if layer.in_features != width:
                    raise IRError(f"{at}: takes {layer.in_features} inputs, {name} gives {width}")
                if want != prev:
                    raise IRError(f"{at}: input {want} != {name}'s output {prev}")
                in_shape = getattr(layer, "in_shape", None)
                flat_as_frame = shape is None and in_shape is not None and \
                    tuple(in_shape[:2]) == (1, 1) and getattr(layer, "arity", 1) > 1
                if in_shape is not None and tuple(in_shape) != shape and not flat_as_frame:
                    raise IRError(f"{at}: takes frames of (H, W, C) {tuple(in_shape)}, {name} "
                                  f"gives {shape or 'a flat vector'} (channel-last input "
                                  "needed)")
            if not -(2**63) <= layer.acc_min <= layer.acc_max < 2**63:
                raise IRError(f"{at}: accumulator bounds [{layer.acc_min}, {layer.acc_max}] "
                              "must be an ordered range within 64 bits")
            for role, t in (("input", layer.input_dtype),
                            ("weight", getattr(layer, "weight_dtype", None))):
                if t is not None and t.bits > MAX_CODE_BITS:
                    raise IRError(f"{at}: {role} datatype {t} is wider than {MAX_CODE_BITS} "
                                  "bits (quantizers of 1..32 bits)")
            layer.check(at)
            last = i == len(self.layers) - 1
            if last and not (layer.weighted and layer.out_features == layer.out_channels):
                raise IRError(f"{at}: the last layer must be weighted with one position "
                              "(its accumulators, or its codes when it has an activation, go to the "
                              "output stage)")
            if layer.weighted and layer.activation is None and not last:
                raise IRError(f"{at}: only the last layer may have no activation")
            given[layer.name] = (layer.out_features, layer.out_dtype,
                                 getattr(layer, "out_shape", None))
        unread = [n for n, readers in self.consumers().items()
                  if not readers and n != self.layers[-1].name]
        if unread:
            raise IRError(f"{where}: {', '.join(unread)} feed(s) no layer: every output but "
                          "the last layer's must be read")
        channels = self.layers[-1].out_channels
        o = self.output
        if o.acc_scale.shape != (channels,) or o.acc_offset.shape != (channels,):
            raise IRError(f"{where}: output stage has {o.acc_scale.shape} scales and "
                          f"{o.acc_offset.shape} offsets, last layer {channels} channels")
        if not np.all(np.isfinite(o.acc_scale)) or not all(np.all(np.isfinite(op.value))
                                                            for op in o.ops):
            raise IRError(f"{where}: output scales and ops must be finite")

    # ---- serialization ----------------------------------------------------------------

    def serialize(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The IR as ir.json's document and ir.npz's arrays (by key)."""
        arrays: dict[str, np.ndarray] = {}

        def put(key: str, a: np.ndarray) -> str:
            arrays[key] = np.asarray(a)
            return key

        def ops(prefix: str, lst: list[ElementwiseOp]) -> list[dict[str, str]]:
            return [{"op": o.op, "value": put(f"{prefix}.op{k}", o.value)} for k, o in enumerate(lst)]

        inp = self.input
        doc: dict[str, Any] = {
            "schema": SCHEMA,
            "name": self.name,
            "source": self.source,
            "meta": self.meta,
            "input": {
                "shape": list(inp.shape), "features": inp.features,
                "preprocess": ops("input", inp.preprocess),
                "kind": inp.kind, "scale": float(inp.scale), "zero_point": float(inp.zero_point),
                "bitwidth": inp.bitwidth, "signed": inp.signed, "narrow": inp.narrow,
                "out_dtype": inp.out_dtype.name, "channels_last": inp.channels_last,
            },
            "layers": [{"name": layer.name, "kind": layer.kind, "source": layer.source,
                        "inputs": list(self.inputs_of(i)), **layer.to_json(put)}
                       for i, layer in enumerate(self.layers)],
            "output": {
                "shape": list(self.output.shape),
                "acc_offset": put("output.acc_offset", self.output.acc_offset),
                "acc_scale": put("output.acc_scale", self.output.acc_scale),
                "ops": ops("output", self.output.ops),
            },
            "initiation_interval": self.initiation_interval,
        }
        return doc, arrays

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write ir.json and ir.npz into `folder` (each atomically)."""
        folder = Path(folder)
        doc, arrays = self.serialize()
        folder.mkdir(parents=True, exist_ok=True)

        def write_npz(tmp: Path) -> None:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # numpy stub: **kwds typed as allow_pickle
            tmp.write_bytes(buf.getvalue())

        npz = write_with(folder / "ir.npz", write_npz)
        js = write_with(folder / "ir.json", lambda t: t.write_text(json.dumps(doc, indent=2) + "\n"))
        return js, npz
