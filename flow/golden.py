"""The golden model: executes the integer IR with integers only, vectorized over a batch.

Every backend is checked against this, and this is checked against qonnx's executor and
Brevitas' forward. Float appears only at the two ends, in the graph's own order of ops:
the input quantizer and the output stage. In between, integer values are carried in
float32 or float64 arrays wherever every partial sum provably fits the mantissa (2^24 or
2^53), so that BLAS computes the integer matmul exactly and fast; int64 otherwise.
"""

from __future__ import annotations

import numpy as np

from flow.ir import DenseLayer, InputStage, IRError, Model, OutputStage


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
        return _levels(x >= 0, np.float32, -1, 2)
    # qonnx's Quant: divide, add zero point, clip, then round half to even (in float32)
    y = np.divide(x, np.float32(stage.scale), out=x if stage.preprocess else None)
    y += np.float32(stage.zero_point)
    lo, hi = stage.code_range
    np.clip(y, np.float32(lo), np.float32(hi), out=y)
    return np.round(y, out=y)


def quantize_input(stage: InputStage, x: np.ndarray) -> np.ndarray:
    """Float inputs [N, *shape] (as the QONNX graph takes them) -> int64 codes [N, features]."""
    return _codes(stage, x).astype(np.int64)


def max_abs(a: np.ndarray) -> int:
    return int(np.abs(a).max()) if a.size else 0


def carrier(layer: DenseLayer) -> type:
    """The array type that holds this layer's integers exactly: every partial sum of the
    dot product is bounded by fan-in x max|w| x max|x|."""
    t = layer.input_dtype
    bound = layer.in_features * max_abs(layer.weights) * max(abs(t.min), abs(t.max))
    for ftype, limit in ((np.float32, 2**24), (np.float64, 2**53)):
        if bound < limit and max(abs(layer.acc_min), abs(layer.acc_max)) + 1 < limit:
            return ftype
    return np.int64


def exact_matmul(x: np.ndarray, w: np.ndarray, bound: int) -> np.ndarray:
    """x @ w.T on integers through BLAS when every partial sum (magnitude <= bound) is exact
    in float32 (< 2^24) or float64 (< 2^53); int64 otherwise."""
    for ftype, limit in ((np.float32, 2**24), (np.float64, 2**53)):
        if bound < limit:
            return (x.astype(ftype) @ w.T.astype(ftype)).astype(np.int64)
    return x.astype(np.int64) @ w.T.astype(np.int64)


def _levels(count: np.ndarray, ftype: type, base: int, step: int) -> np.ndarray:
    """base + step * count, in place and branch-free (np.where mispredicts on random signs)."""
    out = count.astype(ftype, copy=count.dtype == bool)
    out *= step
    out += base
    return out


class _Prepared:
    """A layer's weights and thresholds converted once to the carrier type."""

    def __init__(self, layer: DenseLayer) -> None:
        self.layer = layer
        self.ftype = carrier(layer)
        self.wt = np.ascontiguousarray(layer.weights.T.astype(self.ftype))
        act = layer.activation
        self.t = None if act is None else act.values.astype(self.ftype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        layer, act = self.layer, self.layer.activation
        acc = x.astype(self.ftype, copy=False) @ self.wt
        if acc.size and (acc.min() < layer.acc_min or acc.max() > layer.acc_max):
            raise IRError(f"layer {layer.name}: accumulator left its derived bound "
                          f"[{layer.acc_min}, {layer.acc_max}]: an input is outside "
                          f"{layer.input_dtype}")
        if act is None:
            return acc.astype(np.int64)
        count = (acc >= self.t[:, 0]).astype(self.ftype)
        for j in range(1, act.count):
            count += acc >= self.t[:, j]
        return _levels(count, self.ftype, act.base, act.step)


def dense(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    """One layer on codes x [N, in]: thresholded codes, or accumulators for the last layer."""
    return _Prepared(layer)(x).astype(np.int64)


def dequantize_output(stage: OutputStage, acc: np.ndarray) -> np.ndarray:
    """Last accumulators [N, C] -> the QONNX graph's float32 output [N, *shape]."""
    y = ((acc - stage.acc_offset) * stage.acc_scale).astype(np.float32)
    for op in stage.ops:
        y = op.apply(y)
    return y.reshape((len(acc), *stage.shape))


def _prepared(model: Model) -> list[_Prepared]:
    # cached per model object and weight arrays: runs on many batches convert only once
    key = tuple(id(layer.weights) for layer in model.layers) + tuple(
        id(layer.activation.values) if layer.activation else 0 for layer in model.layers)
    cache = model.__dict__.setdefault("_golden_cache", {})
    if key not in cache:
        cache.clear()
        cache[key] = [_Prepared(layer) for layer in model.layers]
    return cache[key]


def run_codes(model: Model, codes: np.ndarray, trace: bool = False
              ) -> np.ndarray | list[np.ndarray]:
    """Integer codes [N, features] -> last accumulators (or, with trace, every layer's output)."""
    outs = []
    x = np.asarray(codes)
    for step in _prepared(model):
        x = step(x)
        if trace:
            outs.append(x.astype(np.int64))
    return outs if trace else x.astype(np.int64)


def run(model: Model, x: np.ndarray) -> np.ndarray:
    """Float inputs -> the graph's float outputs, through integers only."""
    return dequantize_output(model.output, run_codes(model, _codes(model.input, x)))
