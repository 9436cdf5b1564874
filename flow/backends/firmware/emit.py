"""C emission of the model: model_data.c/h (each layer's constants, from its op) and
model.c/h (qflow_model_run over the arena, the output stage, the prediction), filled into
the templates in firmware/templates/component/."""

from __future__ import annotations

import numpy as np

from flow.backends.firmware.budget import BUDGETS
from flow.backends.firmware.common import c_array, input_ctype, storage_offset
from flow.backends.firmware.plan import Plan, frame_channels
from flow.ir import Model
from flow.resources import fill_template

SYMBOL = {"mul": "*", "div": "/", "add": "+", "sub": "-"}


def layer_object(index: int) -> str:
    """The C name of layer `index`'s constant layer object."""
    return f"qflow_layer{index}"


def model_data_files(p: Plan) -> dict[str, str]:
    """model_data.h and model_data.c: every layer's constants (flash)."""
    return {
        "model_data.h": fill_template("firmware", "component/model_data.h", declarations="\n".join(
            lp.declaration_c(layer_object(lp.index)) for lp in p.layers)),
        "model_data.c": fill_template("firmware", "component/model_data.c", layers="\n".join(
            lp.constants_c(layer_object(lp.index)) for lp in p.layers).rstrip("\n")),
    }


def output_is_monotonic(model: Model) -> bool:
    """True when argmax of the accumulators is argmax of the outputs: one positive scale and
    one offset for all channels and only scalar add/sub/positive mul after them."""
    o = model.output
    if np.ptp(o.acc_offset) or np.ptp(o.acc_scale) or o.acc_scale[0] <= 0:
        return False
    for op in o.ops:
        v = np.asarray(op.value, np.float64).reshape(-1)
        if np.ptp(v) or (op.op in ("mul", "div") and v[0] <= 0):
            return False
    return True


def output_stage(model: Model) -> tuple[str, str]:
    """The IR's output stage in float32, in the golden model's order: (its constant arrays,
    the statements applying its ops to y in qflow_model_logits)."""
    o = model.output
    c = len(o.acc_offset)
    constants = [c_array("int64_t", "acc_offset", o.acc_offset).replace("const", "static const"),
                 f"static const double acc_scale[{c}] = {{"
                 + ", ".join(repr(float(v)) for v in o.acc_scale) + "};"]
    statements = []
    for j, op in enumerate(o.ops):
        v = np.broadcast_to(np.asarray(op.value, np.float32).reshape(-1), (c,))
        constants.append(f"static const float op{j}[{c}] = {{"
                         + ", ".join(f"{float(x)!r}f" for x in v) + "};")
        statements.append(f"        y = y {SYMBOL[op.op]} op{j}[k];")
    return "\n".join(constants), "\n".join(statements)


def run_statements(p: Plan) -> list[str]:
    """The body of qflow_model_run: the input conversion (when the layers do not read the
    caller's codes), then each layer's call from its op, reading each input from its
    producer's buffer, each stage marked."""

    def buffer(k: int | None) -> str:
        return "in" if k is None else f"(arena + {p.offsets[k]})"

    src: list[str] = []
    stage = 0
    converted = buffer(0) if p.input_buffer else "in"
    channels = frame_channels(p.model.layers[0])
    if p.input_kind == "bits" and channels:
        src.append(f"qnn_pack_bipolar_frame(in, QFLOW_IN_FEATURES / {channels}, {channels}, "
                   f"(uint32_t *){converted});")
    elif p.input_kind == "bits":
        src.append(f"qnn_pack_bipolar(in, QFLOW_IN_FEATURES, (uint32_t *){converted});")
    elif p.input_kind == "uint8":
        src.append(f"qnn_uint8_to_storage(in, QFLOW_IN_FEATURES, (int8_t *){converted});")
    if p.input_buffer:
        stage += 1
        src.append(f"QFLOW_MARK({stage});")
    for lp in p.layers:
        k = p.writes[lp.index]
        dst = "out" if k is None else f"arena + {p.offsets[k]}"
        src.append(lp.call_c(layer_object(lp.index), [buffer(r) for r in p.reads[lp.index]],
                             dst, f"arena + {p.scratch[lp.index]}"))
        if k is not None and lp.index == len(p.layers) - 1:
            # the output quantizer's codes, stored in int8, widened
            offset = storage_offset(lp.layer.out_dtype)
            src.append(f"qnn_codes_to_i32((const int8_t *)({dst}), QFLOW_OUT_FEATURES, "
                       f"{offset}, out);")
        stage += 1
        src.append(f"QFLOW_MARK({stage});")
    return src


def model_files(p: Plan) -> dict[str, str]:
    """model.h and model.c."""
    m = p.model
    in_t = m.input.out_dtype
    stages = len(p.layers) + (1 if p.input_buffer else 0)
    constants, statements = output_stage(m)
    shared = {"model": m.name, "arena_bytes": p.arena}
    return {
        "model.h": fill_template(
            "firmware", "component/model.h", **shared, in_features=m.input.features, in_type=in_t,
            out_features=p.outputs, stages=stages, in_ctype=input_ctype(m),
            arena_on_heap=int(p.arena > BUDGETS["esp32"]["static_dram"]),
            bipolar_note=", -1 or +1 each" if in_t.is_bipolar else ""),
        "model.c": fill_template(
            "firmware", "component/model.c", **shared, offsets=p.offsets, buffers=p.buffers,
            scratch=p.scratch, run="\n".join("    " + s for s in run_statements(p)),
            argmax_of_accumulators=int(output_is_monotonic(m)),
            output_constants=constants, output_ops=statements),
    }
