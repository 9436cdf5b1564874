"""Lowering pattern of the residual join: an Add of two quantized streams (Brevitas'
`out + x` between QuantTensors, each made by a quantizer) and the activation quantizer
after it (a QuantReLU: Relu then Quant), as an `add` layer (flow/ir/add.py).

The float graph adds (a - za) * sa and (b - zb) * sb. Where the scales are equal (Brevitas
quantizes both branches with one shared quantizer) the sum is (a + b - za - zb) * sa; where
they differ by a power of two 2^k, the coarser input is weighted 2^k in units of the finer
scale. Either way the sum is an integer accumulator times one scale, and the tail after
the Add (ReLU, the quantizer) becomes thresholds or a requantization exactly as a weighted
layer's does (`flow.lower.linear`), with the zero points in its offset. Other ratios
(onnxruntime calibrates each tensor's scale) are approximated by WA : WB (`input_weights`):
the layer is then inexact, by at most its `alignment_slack` accumulator units.
"""

from __future__ import annotations

import numpy as np
import onnx

from flow.datatypes import DataType
from flow.ir import Activation, AddLayer
from flow.lower.graph import Graph, QuantParams, Stream, frame_index
from flow.lower.linear import LinearMatch, Lowered, lower_linear

KIND = AddLayer.kind
OP_TYPES = ("Add",)
SPATIAL = False  # takes frames or flat vectors alike
ARITY = 2  # lowered once both of its input streams are reached (`lower_join`)


def _scalar(g: Graph, node: onnx.NodeProto, q: QuantParams, what: str) -> tuple[float, int]:
    if q.bipolar or np.asarray(q.scale).size != 1 or np.asarray(q.zero_point).size != 1:
        raise g.err(node, f"{what} needs one scale and zero point (per tensor), not BIPOLAR")
    return float(np.asarray(q.scale).reshape(-1)[0]), int(np.asarray(q.zero_point).reshape(-1)[0])


ALIGN_BITS = 16  # an approximate alignment's larger weight: 2^ALIGN_BITS units


def input_weights(sa: float, sb: float) -> tuple[int, int, float]:
    """(WA, WB, the accumulator's unit scale): the inputs' scales aligned exactly where their
    ratio is a power of two (up to 2^16), else WA : WB approximating sa : sb with the larger
    ALIGN_BITS bits wide."""
    k = np.log2(np.float64(sa) / np.float64(sb))
    if float(k).is_integer() and abs(k) <= 16:
        return (2 ** int(k), 1, sb) if k >= 0 else (1, 2 ** int(-k), sa)
    unit = max(sa, sb) / 2**ALIGN_BITS
    return max(1, round(sa / unit)), max(1, round(sb / unit)), unit


def alignment_slack(wa: int, wb: int, unit: float, sa: float, sb: float,
                    ranges: list[int]) -> int:
    """The most accumulator units sum (a - za) * sa + (b - zb) * sb lies from
    (WA (a - za) + WB (b - zb)) * unit, |a - za| and |b - zb| at most `ranges`."""
    err = abs(wa - sa / unit) * ranges[0] + abs(wb - sb / unit) * ranges[1]
    return int(np.ceil(err))


def lower_join(g: Graph, node: onnx.NodeProto, a: Stream, b: Stream, name: str) -> Lowered:
    """The Add of streams a (its first operand) and b (its second) and the tail after it."""
    sa, za = _scalar(g, node, a.q, "the Add's first operand")
    sb, zb = _scalar(g, node, b.q, "the Add's second operand")
    if a.index.shape != b.index.shape:
        raise g.err(node, f"adds tensors of shapes {a.index.shape} and {b.index.shape}")
    if a.index.ndim == 3:
        c, h, w = a.index.shape
        for s in (a, b):
            if not np.array_equal(s.index, frame_index((c, h, w))):
                raise g.err(node, "an operand reaches the Add in another layout than the "
                                  "frame its layer made (layout ops before an Add)")
        out_index = frame_index((c, h, w))
    elif a.index.ndim == 1 and np.array_equal(a.index, b.index):
        c, h, w = a.index.shape[0], 1, 1
        out_index = a.index
    else:
        raise g.err(node, f"adds tensors of shape {a.index.shape} laid out differently")
    wa, wb, unit = input_weights(sa, sb)
    bounds = [(a.dtype.min, a.dtype.max), (b.dtype.min, b.dtype.max)]
    slack = alignment_slack(wa, wb, unit, sa, sb,
                            [max(abs(lo - z), abs(hi - z)) for (lo, hi), z in zip(bounds, (za, zb),
                                                                                  strict=True)])

    def build(weights: np.ndarray, w_dtype: DataType, acc_min: int, acc_max: int,
              act: Activation | None) -> AddLayer:
        if np.any(weights != weights[:1]):
            raise g.err(node, "the tail after the Add falls with the sum in some channels "
                              "(a negative scale): not supported")
        return AddLayer(name=name, source=node.name, in_shape=(h, w, c), out_shape=(h, w, c),
                        input_dtype=a.dtype, other_dtype=b.dtype,
                        input_weights=(int(weights[0, 0]), int(weights[0, 1])),
                        acc_min=acc_min, acc_max=acc_max, activation=act,
                        alignment_slack=slack)

    match = LinearMatch(
        node=node, weights=np.tile(np.array([wa, wb], np.int64), (c, 1)),
        scale=np.full(c, unit), weight_q=QuantParams(False, np.ones(1, np.float32),
                                                     np.zeros(1, np.float32), 32, True, False,
                                                     "ROUND"),
        tail=[], start=node.output[0], output=node.output[0],
        out_shape=(c, h, w) if a.index.ndim == 3 else (c,),
        x_bounds=(min(lo for lo, _ in bounds), max(hi for _, hi in bounds)), build=build,
        out_index=out_index, acc_offset=np.full(c, wa * za + wb * zb, np.int64),
        exact_alignment=slack == 0, extra_slack=slack)
    return lower_linear(g, match, name, a)
