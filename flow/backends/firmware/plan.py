"""Model-level planning: each layer's plan from its op module, compact forms where the
constants would not fit the flash room, and the static arena from buffer lifetimes."""

from __future__ import annotations

from dataclasses import dataclass

from flow.backends.firmware.budget import CONSTANTS_ROOM
from flow.backends.firmware.common import buffer_bytes, storage_offset
from flow.backends.firmware.ops import LayerPlan, op
from flow.ir import Model


@dataclass
class Plan:
    model: Model
    layers: list[LayerPlan]
    input_buffer: int  # arena bytes for converted inputs (0: layer 0 reads the caller's)
    buffers: list[int]  # bytes of each arena buffer, in order of use
    offsets: list[int]
    scratch: int  # offset of the kernels' scratch (after the buffers)
    arena: int

    @property
    def input_kind(self) -> str:
        return input_kind(self.model)

    @property
    def outputs(self) -> int:
        """Accumulators per inference (the last layer's outputs)."""
        return self.layers[-1].outputs

    @property
    def weight_bytes(self) -> int:
        return sum(lp.weight_bytes for lp in self.layers)

    @property
    def threshold_bytes(self) -> int:
        """Thresholds and biases."""
        return sum(lp.threshold_bytes + lp.bias_bytes for lp in self.layers)

    def buffer_holds(self, k: int) -> str:
        """What arena buffer k holds, for reports and messages."""
        if self.input_buffer:
            if k == 0:
                return f"the input codes converted for {self.layers[0].layer.name}"
            k -= 1
        return f"the outputs of {self.layers[k].layer.name}"


def input_kind(model: Model) -> str:
    """How qflow_model_run presents its input codes to the first layer: packed into bits
    (the first layer reads bits), shifted to int8 (UINT8) or as they are (int8 codes,
    BIPOLAR as -1/+1); the first two take an arena buffer."""
    first = model.layers[0]
    if op(first).reads_bits(first):
        return "bits"
    return "uint8" if storage_offset(model.input.out_dtype) else "direct"


def plan(model: Model) -> Plan:
    """Kernels, stored arrays and the arena for a model.

    Buffer k is written by stage k and read by stage k + 1 only, so buffers k and k + 2
    never live at once: even buffers sit at the arena's start, odd ones at its end, and the
    arena is the largest sum of two neighbours (the least any placement can do)."""
    model.validate(model.name)
    n = len(model.layers)
    # a BIPOLAR activation is stored as bits only where the next layer reads bits
    bits_out = [i + 1 < n and op(model.layers[i + 1]).reads_bits(model.layers[i + 1])
                for i in range(n)]
    layers: list[LayerPlan] = [op(layer).plan_layer(i, layer, bits_out=bits_out[i])
                               for i, layer in enumerate(model.layers)]
    # where the constants would not fit the flash room (int8 pairs take 2 bytes per weight),
    # the biggest layers that have a compact form take it until they do
    total = sum(lp.weight_bytes + lp.threshold_bytes + lp.bias_bytes for lp in layers)
    for lp in sorted(layers, key=lambda lp: -lp.weight_bytes):
        if total <= CONSTANTS_ROOM:
            break
        smaller = lp.compact()
        if smaller is not None:
            layers[lp.index] = smaller
            total -= lp.weight_bytes - smaller.weight_bytes
    sizes = []
    input_buffer = 0
    if input_kind(model) != "direct":
        input_buffer = buffer_bytes(model.input.features, input_kind(model) == "bits")
        sizes.append(input_buffer)
    sizes += [lp.output_bytes for lp in layers[:-1]]
    chain = max([a + b for a, b in zip(sizes, sizes[1:], strict=False)] + sizes + [0])
    offsets = [0 if k % 2 == 0 else chain - s for k, s in enumerate(sizes)]
    scratch = max(lp.scratch_bytes for lp in layers)
    return Plan(model, layers, input_buffer, sizes, offsets, chain, chain + scratch)
