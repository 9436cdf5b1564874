"""The golden model: executes the integer IR with integers only, vectorized over a batch.

Every backend is checked against this, and this is checked against qonnx's executor and
Brevitas' forward. Float appears only at the two ends, in the graph's own order of ops:
the input quantizer and the output stage. In between, each layer runs through its kind's
module (`OPS`), on integers carried exactly (see `flow.golden.exact`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np

from flow.golden import add, conv, dense, pool
from flow.golden.exact import levels
from flow.ir import (
    MODEL_INPUT,
    InputStage,
    IRError,
    Layer,
    Model,
    OutputStage,
    kind_registry,
    op_for,
)

# kind -> module with prepare(layer) -> (codes [N, in] (one array per input the layer reads)
# -> codes or accumulators [N, out])
OPS: dict[str, ModuleType] = kind_registry((dense, conv, pool, add), "the golden model")


def _codes(stage: InputStage, x: np.ndarray) -> np.ndarray:
    """Float inputs -> integer codes held in float32 (exact: |code| <= 2^8)."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if x[0].size != stage.features:
        raise IRError(f"inputs of shape {x.shape[1:]} per sample, the model takes {stage.shape}")
    x = x.reshape(n, -1)
    for k, op in enumerate(stage.preprocess):
        x = op.apply(x, out=None if k == 0 else x)  # in place after the first copy
    if stage.kind == "bipolar":
        return levels(x >= 0, np.float32, -1, 2)
    # qonnx's Quant: divide, add zero point, clip, then round half to even (in float32)
    y = np.divide(x, np.float32(stage.scale), out=x if stage.preprocess else None)
    y += np.float32(stage.zero_point)
    lo, hi = stage.code_range
    np.clip(y, np.float32(lo), np.float32(hi), out=y)
    return np.round(y, out=y)


def quantize_input(stage: InputStage, x: np.ndarray) -> np.ndarray:
    """Float inputs [N, *shape] (as the QONNX graph takes them) -> int64 codes [N, features],
    in (H, W, C) order for a channel-last stage."""
    codes = _codes(stage, x).astype(np.int64)
    if stage.channels_last:
        codes = codes.reshape(len(codes), *stage.shape).transpose(0, 2, 3, 1).reshape(len(codes), -1)
    return codes


def layer(layer: Layer, *x: np.ndarray) -> np.ndarray:
    """One layer on the codes [N, in] of each input it reads: its output codes, or
    accumulators for the last layer."""
    return op_for(OPS, layer, "the golden model").prepare(layer)(*x).astype(np.int64)


def dequantize_output(stage: OutputStage, acc: np.ndarray) -> np.ndarray:
    """Last accumulators [N, C] -> the QONNX graph's float32 output [N, *shape]."""
    y = ((acc - stage.acc_offset) * stage.acc_scale).astype(np.float32)
    for op in stage.ops:
        y = op.apply(y)
    return y.reshape((len(acc), *stage.shape))


def _prepared(model: Model) -> list[Callable[[np.ndarray], np.ndarray]]:
    # cached per model object and its arrays: runs on many batches convert weights only once
    key = tuple(id(v) for lay in model.layers for v in vars(lay).values()
                if isinstance(v, np.ndarray)) + tuple(
        id(a) for lay in model.layers
        for a in (vars(lay.activation).values() if lay.activation else ()) if isinstance(a, np.ndarray))
    cache = model.__dict__.setdefault("_golden_cache", {})
    if key not in cache:
        cache.clear()
        cache[key] = [op_for(OPS, lay, "the golden model").prepare(lay) for lay in model.layers]
    return cache[key]


def _walk(model: Model, codes: np.ndarray, keep: bool) -> list[np.ndarray]:
    """Every layer in the stored (topological) order, each on the outputs it reads; a
    value is dropped after its last reader unless `keep`. Returns the outputs kept (the
    last layer's alone without `keep`)."""
    readers = model.consumers()
    pending = {name: len(r) for name, r in readers.items()}
    values: dict[str, np.ndarray] = {MODEL_INPUT: np.asarray(codes)}
    outs = []
    for i, step in enumerate(_prepared(model)):
        reads = model.inputs_of(i)
        y = step(*(values[name] for name in reads))  # each op's own carrier type
        for name in reads:
            pending[name] -= 1
            if not pending[name] and not keep:
                del values[name]
        values[model.layers[i].name] = y
        if keep:
            outs.append(y.astype(np.int64))
    return outs or [values[model.layers[-1].name].astype(np.int64)]


def trace_codes(model: Model, codes: np.ndarray) -> list[np.ndarray]:
    """Integer codes [N, features] -> every layer's output (int64), in order."""
    return _walk(model, codes, keep=True)


def run_codes(model: Model, codes: np.ndarray) -> np.ndarray:
    """Integer codes [N, features] -> the last layer's int64 accumulators [N, C]."""
    return _walk(model, codes, keep=False)[-1]


def run(model: Model, x: np.ndarray) -> np.ndarray:
    """Float inputs -> the graph's float outputs, through integers only."""
    return dequantize_output(model.output, run_codes(model, quantize_input(model.input, x)))
