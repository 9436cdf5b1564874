"""Lower a QONNX graph (a Brevitas export or any QONNX file of that shape) to the integer IR.

The graph is read as a chain: the input stage (float preprocessing up to the input
quantizer), then layers, each matched by the pattern of its kind (`PATTERNS`: op type ->
module with `match`), its float tail and activation quantizer collapsed into thresholds
(`flow.lower.linear`, `flow.lower.thresholds`), and at the graph's end the output stage.
Adding a layer kind adds one pattern module here.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from flow.ir import InputStage, Layer, Model, OutputStage
from flow.lower import dense
from flow.lower.graph import (
    ARITH,
    QUANT_OPS,
    SHAPE_OPS,
    Graph,
    LoweringError,
    QuantParams,
    elementwise,
    input_shape,
    load_onnx,
    next_node,
)
from flow.lower.linear import lower_linear

# ONNX op type -> the module whose match() turns it (and what it needs) into a layer of
# its KIND
PATTERNS: dict[str, ModuleType] = {op: dense for op in dense.OP_TYPES}

__all__ = ["PATTERNS", "LoweringError", "lower"]


def input_stage(g: Graph) -> tuple[InputStage, QuantParams, str]:
    """Elementwise preprocessing up to the first quantizer, and that quantizer."""
    tensor, shape = input_shape(g)
    pre = []
    node = next_node(g, tensor)
    while node is not None and node.op_type not in QUANT_OPS:
        if node.op_type not in SHAPE_OPS | set(ARITH):
            raise g.err(node, "op not supported before the input quantizer")
        pre += elementwise(g, node, tensor)
        tensor, node = node.output[0], next_node(g, node.output[0])
    if node is None:
        raise g.err(None, "no input quantizer found on the path from the input")
    q = g.quant_params(node)
    if q.scale.size != 1 or q.zero_point.size != 1:
        raise g.err(node, "the input quantizer needs one scale and zero point (per tensor)")
    stage = InputStage(shape=shape, preprocess=pre, kind="bipolar" if q.bipolar else "int",
                       scale=float(q.scale.reshape(-1)[0]),
                       zero_point=float(q.zero_point.reshape(-1)[0]), bitwidth=q.bitwidth,
                       signed=q.signed, narrow=q.narrow, out_dtype=q.dtype)
    return stage, q, node.output[0]


def lower(path: Path, name: str | None = None) -> Model:
    """QONNX file -> integer IR (validated)."""
    path = Path(path)
    g = Graph(load_onnx(path), str(path))
    inp, x_q, tensor = input_stage(g)
    x_dtype = inp.out_dtype
    layers: list[Layer] = []
    inexact: list[str] = []
    output: OutputStage | None = None
    while output is None:
        node = next_node(g, tensor)
        while node is not None and node.op_type in SHAPE_OPS:
            tensor, node = node.output[0], next_node(g, node.output[0])
        if node is None:
            raise g.err(None, "the graph ends before a layer with weights")
        if node.op_type not in PATTERNS:
            raise g.err(node, f"op {node.op_type} is not supported here (qflow lowers "
                              f"{', '.join(sorted(PATTERNS))} layers)")
        pattern = PATTERNS[node.op_type]
        lname = f"{pattern.KIND}{len(layers)}"
        done = lower_linear(g, pattern.match(g, node, tensor, lname, x_q, x_dtype), lname, x_q,
                            x_dtype)
        layers.append(done.layer)
        if not done.exact:
            inexact.append(lname)
        tensor, output = done.tensor, done.output
        if done.x_q is not None:
            x_q, x_dtype = done.x_q, done.layer.out_dtype
    model = Model(name=name or path.stem.replace(".qonnx", ""), input=inp, layers=layers,
                  output=output, source=str(path), meta={"inexact_layers": inexact})
    model.validate(str(path))
    return model
