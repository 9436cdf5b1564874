"""The integer IR: the contract between lowering and every backend.

A model is an input stage (float preprocessing + the graph's input quantizer, giving
integer codes), an ordered list of integer layers, and an output stage (the float ops
that turn the last layer's integer accumulators into the QONNX graph's output).

Integer semantics of a dense layer (the golden model implements exactly this):

    acc[o]  = sum_i W[o, i] * x[i]                  (x: input codes, W: integer weights)
    count   = #{ j : acc[o] >= T[o, j] }            (T: thresholds, sorted per row)
    y[o]    = base + step * count                   (y: output codes of `out_dtype`)

BIPOLAR values are -1/+1 (step 2, base -1); hardware stores them as one bit, 1 for +1, and
an XNOR-popcount datapath sees popcount = (acc + in_features) / 2 (see `popcount_thresholds`).
The last layer has no thresholds: its accumulators leave the accelerator and the output
stage maps them to floats: y = ops(float32((acc - acc_offset) * acc_scale)).

Files: `ir.json` (structure, schema `qflow.ir/1`) beside `ir.npz` (arrays, by key).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from flow.atomic import write_with
from flow.datatypes import DataType, bits_for_range, dtype

SCHEMA = "qflow.ir/1"
T = TypeVar("T")
ELEMENTWISE_OPS = ("mul", "div", "add", "sub")


class IRError(ValueError):
    """A malformed or inconsistent IR; the message names the file and the layer."""


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
    or "bipolar" (BipolarQuant: code = +1 if x >= 0 else -1).
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


@dataclass
class Thresholds:
    """Per-output-channel thresholds: y = base + step * #{j : acc >= T[o, j]}."""

    values: np.ndarray  # int64 [out_features, n_thresholds], non-decreasing along axis 1
    base: int
    step: int
    out_dtype: DataType

    @property
    def count(self) -> int:
        return int(self.values.shape[1])


@dataclass
class Folding:
    """PE output channels and SIMD input lanes in parallel."""

    pe: int = 1
    simd: int = 1


@dataclass
class DenseLayer:
    name: str
    source: str  # QONNX node it was lowered from, for messages
    in_features: int
    out_features: int
    input_dtype: DataType
    weight_dtype: DataType
    weights: np.ndarray  # int [out_features, in_features]
    acc_min: int
    acc_max: int
    activation: Thresholds | None
    folding: Folding = field(default_factory=Folding)
    kind: str = "dense"

    @property
    def acc_dtype(self) -> DataType:
        return dtype(f"INT{bits_for_range(min(self.acc_min, -1), self.acc_max)}")

    @property
    def out_dtype(self) -> DataType:
        return self.activation.out_dtype if self.activation else self.acc_dtype

    @property
    def cycles(self) -> int:
        """Cycles per input vector at this folding: (out / PE) x (in / SIMD)."""
        return (self.out_features // self.folding.pe) * (self.in_features // self.folding.simd)

    @property
    def is_xnor(self) -> bool:
        return self.weight_dtype.is_bipolar and self.input_dtype.is_bipolar


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
    layers: list[DenseLayer]
    output: OutputStage
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def initiation_interval(self) -> int:
        """Cycles between frames in steady state: the slowest layer's."""
        return max(layer.cycles for layer in self.layers)

    def validate(self, where: str = "IR") -> None:
        """Raise IRError naming the layer when shapes, types or bounds disagree."""
        width = self.input.features
        prev = self.input.out_dtype
        for i, layer in enumerate(self.layers):
            at = f"{where}: layer {i} ({layer.name}, from {layer.source})"
            if layer.in_features != width:
                raise IRError(f"{at}: takes {layer.in_features} inputs, previous gives {width}")
            if layer.input_dtype != prev:
                raise IRError(f"{at}: input {layer.input_dtype} != previous output {prev}")
            if layer.weights.shape != (layer.out_features, layer.in_features):
                raise IRError(f"{at}: weights {layer.weights.shape}")
            w = layer.weights
            if w.size and (w.min() < layer.weight_dtype.min or w.max() > layer.weight_dtype.max):
                raise IRError(f"{at}: weights outside {layer.weight_dtype}")
            if layer.weight_dtype.is_bipolar and np.any(w == 0):
                raise IRError(f"{at}: BIPOLAR weights hold 0")
            lo, hi = accumulator_bounds(w, *dtype_range(layer.input_dtype))
            if lo.min() < layer.acc_min or hi.max() > layer.acc_max:
                raise IRError(f"{at}: accumulator bound [{layer.acc_min}, {layer.acc_max}] "
                              f"is narrower than the worst case [{lo.min()}, {hi.max()}]")
            f = layer.folding
            if layer.out_features % f.pe or layer.in_features % f.simd:
                raise IRError(f"{at}: PE {f.pe} / SIMD {f.simd} do not divide "
                              f"{layer.out_features} x {layer.in_features}")
            act = layer.activation
            last = i == len(self.layers) - 1
            if act is None and not last:
                raise IRError(f"{at}: only the last layer may have no activation")
            if act is not None:
                if act.values.shape[0] != layer.out_features:
                    raise IRError(f"{at}: thresholds for {act.values.shape[0]} channels")
                if np.any(np.diff(act.values, axis=1) < 0):
                    raise IRError(f"{at}: thresholds not sorted")
                top = act.base + act.step * act.count
                if not act.out_dtype.contains(min(act.base, top), max(act.base, top)):
                    raise IRError(f"{at}: activation levels do not fit {act.out_dtype}")
            if last and act is not None:
                raise IRError(f"{at}: the last layer must leave its accumulators to the output")
            width, prev = layer.out_features, layer.out_dtype
        if self.output.acc_scale.shape[0] != width:
            raise IRError(f"{where}: output stage has {self.output.acc_scale.shape[0]} channels,"
                          f" last layer {width}")

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
                "out_dtype": inp.out_dtype.name,
            },
            "layers": [],
            "output": {
                "shape": list(self.output.shape),
                "acc_offset": put("output.acc_offset", self.output.acc_offset),
                "acc_scale": put("output.acc_scale", self.output.acc_scale),
                "ops": ops("output", self.output.ops),
            },
            "initiation_interval": self.initiation_interval,
        }
        for layer in self.layers:
            act = layer.activation
            doc["layers"].append({
                "name": layer.name, "kind": layer.kind, "source": layer.source,
                "in_features": layer.in_features, "out_features": layer.out_features,
                "input_dtype": layer.input_dtype.name, "weight_dtype": layer.weight_dtype.name,
                "weights": put(f"{layer.name}.weights", layer.weights),
                "acc_min": int(layer.acc_min), "acc_max": int(layer.acc_max),
                "acc_dtype": layer.acc_dtype.name,
                "activation": None if act is None else {
                    "kind": "thresholds",
                    "thresholds": put(f"{layer.name}.thresholds", act.values),
                    "count": act.count, "base": act.base, "step": act.step,
                    "out_dtype": act.out_dtype.name,
                },
                "out_dtype": layer.out_dtype.name,
                "folding": {"pe": layer.folding.pe, "simd": layer.folding.simd},
                "cycles": layer.cycles,
            })
        return doc, arrays

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write ir.json and ir.npz into `folder` (each atomically)."""
        folder = Path(folder)
        doc, arrays = self.serialize()
        folder.mkdir(parents=True, exist_ok=True)

        def write_npz(tmp: Path) -> None:
            buf = io.BytesIO()
            np.savez_compressed(buf, **arrays)
            tmp.write_bytes(buf.getvalue())

        npz = write_with(folder / "ir.npz", write_npz)
        js = write_with(folder / "ir.json", lambda t: t.write_text(json.dumps(doc, indent=2) + "\n"))
        return js, npz


def load(folder_or_json: Path) -> Model:
    """Read an IR from a build folder (or its ir.json); IRError names what is wrong."""
    p = Path(folder_or_json)
    js = p if p.suffix == ".json" else p / "ir.json"
    npz_path = js.with_name("ir.npz")
    for f in (js, npz_path):
        if not f.is_file():
            raise IRError(f"{f}: missing (run `qflow export` or `qflow compile` first)")
    try:
        doc = json.loads(js.read_text())
    except json.JSONDecodeError as e:
        raise IRError(f"{js}: not valid JSON ({e})") from e
    if doc.get("schema") != SCHEMA:
        raise IRError(f"{js}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
    try:
        with np.load(npz_path) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zip and pickle errors have many types
        raise IRError(f"{npz_path}: unreadable ({e})") from e

    def arr(key: str) -> np.ndarray:
        if key not in arrays:
            raise IRError(f"{npz_path}: array {key!r} named by {js.name} is missing")
        return arrays[key]

    def ops(lst: list[dict[str, str]]) -> list[ElementwiseOp]:
        return [ElementwiseOp(o["op"], arr(o["value"])) for o in lst]

    try:
        i = doc["input"]
        inp = InputStage(
            shape=tuple(i["shape"]), preprocess=ops(i["preprocess"]), kind=i["kind"],
            scale=i["scale"], zero_point=i["zero_point"], bitwidth=i["bitwidth"],
            signed=i["signed"], narrow=i["narrow"], out_dtype=dtype(i["out_dtype"]))
        layers = []
        for d in doc["layers"]:
            a = d["activation"]
            act = None if a is None else Thresholds(
                values=arr(a["thresholds"]).astype(np.int64), base=a["base"], step=a["step"],
                out_dtype=dtype(a["out_dtype"]))
            layers.append(DenseLayer(
                name=d["name"], source=d["source"], in_features=d["in_features"],
                out_features=d["out_features"], input_dtype=dtype(d["input_dtype"]),
                weight_dtype=dtype(d["weight_dtype"]), weights=arr(d["weights"]),
                acc_min=d["acc_min"], acc_max=d["acc_max"], activation=act,
                folding=Folding(**d["folding"]), kind=d["kind"]))
        o = doc["output"]
        out = OutputStage(acc_offset=arr(o["acc_offset"]), acc_scale=arr(o["acc_scale"]),
                          ops=ops(o["ops"]), shape=tuple(o["shape"]))
        model = Model(name=doc["name"], input=inp, layers=layers, output=out,
                      source=doc.get("source", ""), meta=doc.get("meta", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise IRError(f"{js}: malformed IR ({type(e).__name__}: {e})") from e
    model.validate(str(js))
    return model


def op_for(registry: Mapping[str, T], layer: DenseLayer, stage: str) -> T:
    """The stage's module (or object) for this layer's kind; an IRError naming the layer and
    the stage when the stage does not handle that kind."""
    if layer.kind not in registry:
        raise IRError(f"layer {layer.name} (from {layer.source or '?'}): kind {layer.kind!r} is "
                      f"not supported by {stage} (it handles: {', '.join(sorted(registry))})")
    return registry[layer.kind]


def dtype_range(t: DataType) -> tuple[int, int]:
    return t.min, t.max


def accumulator_bounds(weights: np.ndarray, x_min: int, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel worst-case accumulator range over all inputs in [x_min, x_max]."""
    w = weights.astype(np.int64)
    lo = np.minimum(w * x_min, w * x_max).sum(axis=1)
    hi = np.maximum(w * x_min, w * x_max).sum(axis=1)
    return lo, hi


def popcount_thresholds(layer: DenseLayer) -> np.ndarray:
    """Thresholds on popcount(XNOR) for a BIPOLAR x BIPOLAR layer.

    acc = 2 * popcount - in_features, so acc >= T  <=>  popcount >= ceil((T + in) / 2).
    """
    if not layer.is_xnor or layer.activation is None:
        raise IRError(f"layer {layer.name}: popcount thresholds need BIPOLAR x BIPOLAR + thresholds")
    t = layer.activation.values + layer.in_features
    return -((-t) // 2)  # ceil division for negative values too
