"""Model-level planning: each layer's plan from its op module, compact forms where the
constants would not fit the flash room, and the static arena from buffer lifetimes."""

from __future__ import annotations

from dataclasses import dataclass

from flow.backends.firmware.budget import CONSTANTS_ROOM
from flow.backends.firmware.common import coded_output, storage_offset
from flow.backends.firmware.conv import frame_bytes
from flow.backends.firmware.ops import LayerPlan, op
from flow.ir import Layer, Model


@dataclass
class Plan:
    model: Model
    layers: list[LayerPlan]
    input_buffer: int  # arena bytes for converted inputs (0: layer 0 reads the caller's)
    buffers: list[int]  # bytes of each arena buffer, in order of use
    offsets: list[int]
    scratch: list[int]  # per layer: the offset of its kernel's scratch
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


def frame_channels(layer: Layer) -> int:
    """Channels of a pixel of the frame a layer reads, 0 for a flat vector."""
    shape = getattr(layer, "in_shape", None)
    return 0 if shape is None else int(shape[2])


def input_kind(model: Model) -> str:
    """How qflow_model_run presents its input codes to the first layer: packed into bits
    (the first layer reads bits; a frame pixel by pixel, see qnn.h), shifted to int8
    (UINT8) or as they are (int8 codes, BIPOLAR as -1/+1); the first two take an arena
    buffer."""
    if storage(model)[0]:
        return "bits"
    return "uint8" if storage_offset(model.input.out_dtype) else "direct"


def storage(model: Model) -> list[bool]:
    """For the model input and each layer's output: stored as bits? A BIPOLAR activation is
    bits only where its consumer reads bits, which for a pool depends on its own consumer:
    decided from the last layer back."""
    n = len(model.layers)
    bits = [False] * (n + 1)  # [0]: the model input, [i + 1]: layer i's outputs
    for i in range(n - 1, -1, -1):
        layer = model.layers[i]
        bits[i] = op(layer).reads_bits(layer, bits[i + 1])
    return bits


def plan(model: Model) -> Plan:
    """Kernels, stored arrays and the arena for a model.

    Buffer k is written by stage k and read by stage k + 1 only, so only a layer's input,
    its output and its kernel's scratch live at once: even buffers sit at the arena's
    start, odd ones at its end, the scratch in the gap between the two a layer uses, and
    the arena is the largest of these sums over the layers (the least any placement can
    do)."""
    model.validate(model.name)
    bits = storage(model)
    layers: list[LayerPlan] = []
    for i, layer in enumerate(model.layers):
        # a flat layer after a frame reads it as the frame's pixels
        prev = model.layers[i - 1] if i else None
        pixel = frame_channels(layer) or (int(prev.out_shape[2]) if prev is not None and
                                          hasattr(prev, "out_shape") else 0)
        layers.append(op(layer).plan_layer(i, layer, bits_out=bits[i + 1],
                                           in_pixel=pixel if bits[i] else 0))
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
        first = model.layers[0]
        pixels = model.input.features // (frame_channels(first) or model.input.features)
        input_buffer = frame_bytes(pixels, model.input.features // pixels,
                                   input_kind(model) == "bits")
        sizes.append(input_buffer)
    # the last layer writes its accumulators to `out`, or its codes to a buffer that
    # qnn_codes_to_i32 then widens into `out` (an output quantizer, coded_output)
    coded = coded_output(model)
    sizes += [lp.output_bytes for lp in (layers if coded else layers[:-1])]
    shift = 1 if input_buffer else 0
    # per layer: the buffer it reads (None: the caller's input) and writes (None: `out`)
    uses = [(i - 1 + shift if i - 1 + shift >= 0 else None,
             i + shift if i < len(layers) - 1 or coded else None) for i in range(len(layers))]

    def size(k: int | None) -> int:
        return 0 if k is None else sizes[k]

    arena = max([size(a) + size(b) + lp.scratch_bytes
                 for (a, b), lp in zip(uses, layers, strict=True)] + sizes + [0])
    offsets = [0 if k % 2 == 0 else arena - s for k, s in enumerate(sizes)]
    # a layer's scratch follows the one of its buffers at the arena's start
    scratch = [next((sizes[k] for k in (a, b) if k is not None and k % 2 == 0), 0)
               for a, b in uses]
    return Plan(model, layers, input_buffer, sizes, offsets, scratch, arena)
