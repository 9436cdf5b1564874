"""The integer IR: the contract between lowering and every backend.

A model is an input stage (float preprocessing + the graph's input quantizer, giving
integer codes), an ordered list of integer layers, each of a registered `kind`
(`LAYER_KINDS`: one module per kind: `dense.py`, `conv.py`, `pool.py`, `add.py`), each
naming the layers it reads (`Model.inputs_of`: a chain by default, a graph where a residual
network forks and joins; layers in a topological order), and an output
stage (the float ops that turn the last layer's integer accumulators into the QONNX graph's output).

A layer with thresholds maps its accumulator to output codes

    count   = #{ j : acc[o] >= T[o, j] }            (T: thresholds, sorted per row)
    y[o]    = base + step * count                   (y: output codes of `out_dtype`)

The last layer usually has no activation: its accumulators leave the accelerator and the
output stage maps them to floats: y = ops(float32((acc - acc_offset) * acc_scale)). Where
the graph ends in a quantizer (an ONNX QDQ model's output pair), the last layer carries it
and its codes leave instead, with acc_offset its zero point and acc_scale its scale.

Files: `ir.json` (structure, schema `qflow.ir/3`) beside `ir.npz` (arrays, by key).
"""

from flow.ir.activation import Activation, activation_form, thresholds_of
from flow.ir.add import AddLayer, add_accumulators
from flow.ir.conv import Conv2dLayer, window_output
from flow.ir.dense import DenseLayer, popcount_thresholds
from flow.ir.files import load
from flow.ir.layer import (
    MAX_TENSOR_VALUES,
    MAX_WEIGHT_VALUES,
    Folding,
    IRError,
    Layer,
    Thresholds,
    accumulator_bounds,
    dtype_range,
)
from flow.ir.model import (
    ELEMENTWISE_OPS,
    LAYER_KINDS,
    MODEL_INPUT,
    SCHEMA,
    ElementwiseOp,
    InputStage,
    Model,
    OutputStage,
    kind_registry,
    op_for,
)
from flow.ir.pool import AvgPoolLayer, MaxPoolLayer, Pool
from flow.ir.requant import Requant, half_even_multiplier, quantize_multiplier

__all__ = [
    "Activation", "AddLayer", "AvgPoolLayer", "MODEL_INPUT", "add_accumulators", "Pool",
    "Requant", "activation_form", "half_even_multiplier",
    "quantize_multiplier",
    "thresholds_of",
    "ELEMENTWISE_OPS", "LAYER_KINDS", "MAX_TENSOR_VALUES", "MAX_WEIGHT_VALUES", "SCHEMA",
    "Conv2dLayer", "DenseLayer", "ElementwiseOp",
    "Folding", "IRError", "MaxPoolLayer", "InputStage", "Layer", "Model", "OutputStage", "Thresholds",
    "accumulator_bounds", "dtype_range", "kind_registry", "load", "op_for", "popcount_thresholds",
    "window_output",
]
