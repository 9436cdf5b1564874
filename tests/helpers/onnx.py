"""Hand-built QONNX nodes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quant(name: str, inp: str, scale: float, bits: int, signed: int, rounding: str = "ROUND"
          ) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    consts = [numpy_helper.from_array(np.array(v, np.float32), f"{name}_{k}")
              for k, v in (("s", scale), ("z", 0.0), ("b", float(bits)))]
    node = helper.make_node("Quant", [inp, *(c.name for c in consts)], [name], name=name,
                            domain="qonnx.custom_op.general", signed=signed, narrow=0,
                            rounding_mode=rounding)
    return node, consts
