"""Reading an IR back: ir.json and ir.npz as untrusted files (integer arrays, no array past
the largest an IR holds, the schema this qflow writes), the model validated, and the
document equal to what the model itself would write (a hand-edited field is named)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from flow.datatypes import dtype
from flow.ir.layer import MAX_WEIGHT_VALUES, IRError
from flow.ir.model import (
    ELEMENTWISE_OPS,
    LAYER_KINDS,
    SCHEMA,
    ElementwiseOp,
    InputStage,
    Model,
    OutputStage,
)

# ir.npz is read whole: no array may unpack to more than the most weights at 8 bytes each (a
# zip bomb is refused before it unpacks)
MAX_ARRAY_BYTES = 8 * MAX_WEIGHT_VALUES


def _integer_array(a: np.ndarray, key: str, where: str) -> np.ndarray:
    """Arrays the IR defines as integers must hold integers (no NaN, no fractions)."""
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    raise IRError(f"{where}: array {key!r} must hold integers (found {a.dtype} values such as "
                  f"{a.reshape(-1)[:1]})")


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
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise IRError(f"{js}: schema {found!r}, this qflow reads {SCHEMA!r}; re-run "
                      "`qflow export` (or `qflow compile`) to rebuild the IR")
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            for member in z.zip.infolist():
                if member.file_size > MAX_ARRAY_BYTES:
                    raise IRError(f"{npz_path}: {member.filename} unpacks to "
                                  f"{member.file_size} bytes, more than an IR array holds "
                                  f"({MAX_ARRAY_BYTES})")
            arrays = {k: z[k] for k in z.files}
    except IRError:
        raise
    except Exception as e:  # zip and pickle errors have many types
        raise IRError(f"{npz_path}: unreadable ({e})") from e

    def raw(key: str) -> np.ndarray:
        if key not in arrays:
            raise IRError(f"{npz_path}: array {key!r} named by {js.name} is missing")
        return arrays[key]

    def arr(key: str) -> np.ndarray:
        """Every array of the layers and the output offsets: integers by definition."""
        return _integer_array(raw(key), key, str(npz_path))

    def ops(lst: list[dict[str, str]]) -> list[ElementwiseOp]:
        out = [ElementwiseOp(o["op"], raw(o["value"])) for o in lst]
        for o in out:
            if o.op not in ELEMENTWISE_OPS:
                raise IRError(f"{js}: unknown elementwise op {o.op!r}")
        return out

    try:
        i = doc["input"]
        inp = InputStage(
            shape=tuple(i["shape"]), preprocess=ops(i["preprocess"]), kind=i["kind"],
            scale=float(i["scale"]), zero_point=float(i["zero_point"]),
            bitwidth=int(i["bitwidth"]), signed=bool(i["signed"]), narrow=bool(i["narrow"]),
            out_dtype=dtype(i["out_dtype"]), channels_last=bool(i.get("channels_last", False)))
        layers = []
        graph: dict[str, tuple[str, ...]] = {}
        for k, d in enumerate(doc["layers"]):
            graph[str(d.get("name"))] = tuple(str(n) for n in d["inputs"])
            kind = d.get("kind")
            if kind not in LAYER_KINDS:
                raise IRError(f"{js}: layer {k} ({d.get('name')}): unknown kind {kind!r} "
                              f"(this qflow knows {', '.join(LAYER_KINDS)})")
            try:
                layers.append(LAYER_KINDS[kind].from_json(d, arr))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                if isinstance(e, IRError):
                    raise
                raise IRError(f"{js}: layer {k} ({d.get('name')}): malformed "
                              f"({type(e).__name__}: {e})") from e
        o = doc["output"]
        out = OutputStage(acc_offset=arr(o["acc_offset"]),
                          acc_scale=raw(o["acc_scale"]).astype(np.float64),
                          ops=ops(o["ops"]), shape=tuple(o["shape"]))
        model = Model(name=doc["name"], input=inp, layers=layers, output=out,
                      source=doc.get("source", ""), meta=doc.get("meta", {}), inputs=graph)
    except IRError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise IRError(f"{js}: malformed IR ({type(e).__name__}: {e})") from e
    model.validate(str(js))
    check_written_as_derived(model, doc, arrays, js, npz_path)
    return model


NOT_THERE = "(not a field of this IR)"  # first_difference's stand-in for an absent key


def first_difference(found: Any, derived: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """Where two JSON documents first differ: (path, found there, derived there)."""
    if isinstance(found, dict) and isinstance(derived, dict):
        for key in [*derived, *(k for k in found if k not in derived)]:
            d = first_difference(found.get(key, NOT_THERE), derived.get(key, NOT_THERE),
                                 f"{path}.{key}" if path else str(key))
            if d:
                return d
        return None
    if isinstance(found, list) and isinstance(derived, list) and len(found) == len(derived):
        for k, (a, b) in enumerate(zip(found, derived, strict=True)):
            d = first_difference(a, b, f"{path}[{k}]")
            if d:
                return d
        return None
    same = type(found) is type(derived) or {type(found), type(derived)} <= {int, float}
    return None if same and found == derived else (path, found, derived)


def check_written_as_derived(model: Model, doc: dict[str, Any], arrays: dict[str, np.ndarray],
                             js: Path, npz_path: Path) -> None:
    """ir.json holds derived fields too (cycles, datatypes of accumulators and outputs,
    features, the initiation interval) and ir.npz exactly the arrays it names: the model
    read must write back the very same document and array names, or a field was edited
    by hand (or is unknown) and is named."""
    doc_again, arrays_again = model.serialize()
    diff = first_difference(doc, json.loads(json.dumps(doc_again)))
    if diff:
        path, found, derived = diff
        where = path
        if path.startswith("layers["):
            k = int(path[len("layers["):path.index("]")])
            where = f"layer {k} ({model.layers[k].name}): {path[path.index(']') + 2:]}"
        raise IRError(f"{js}: {where} is {found!r}, but the IR's other fields give "
                      f"{derived!r} (edited by hand? re-run `qflow export` or `qflow compile`)")
    extra = sorted(set(arrays) - set(arrays_again))
    if extra:
        raise IRError(f"{npz_path}: arrays {extra} are not named by {js.name}")
    for key, a in arrays_again.items():
        if np.shape(arrays[key]) != np.shape(a):
            raise IRError(f"{npz_path}: array {key!r} of shape {np.shape(arrays[key])}, the IR "
                          f"declares {np.shape(a)}")
