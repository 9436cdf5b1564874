"""Model-level planning: each layer's plan from its op module, compact forms where the
constants would not fit the flash room, and the static arena from buffer lifetimes."""

from __future__ import annotations

from dataclasses import dataclass

from flow.backends.firmware.budget import CONSTANTS_ROOM
from flow.backends.firmware.common import FirmwareError, coded_output, storage_offset
from flow.backends.firmware.conv import frame_bytes
from flow.backends.firmware.ops import LayerPlan, op
from flow.ir import MODEL_INPUT, Layer, Model


@dataclass
class Plan:
    model: Model
    layers: list[LayerPlan]
    input_buffer: int  # arena bytes for converted inputs (0: layers read the caller's)
    buffers: list[int]  # bytes of each arena buffer: the converted inputs, then each layer's
    offsets: list[int]
    scratch: list[int]  # per layer: the offset of its kernel's scratch
    arena: int
    # per layer: the buffer of each input it reads (None: the caller's input) and the one it
    # writes (None: `out`)
    reads: list[tuple[int | None, ...]]
    writes: list[int | None]
    # per buffer: the steps it lives, from its writer's to its last reader's (step -1: the
    # input conversion, step i: layer i)
    lifetimes: list[tuple[int, int]]

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
        held = ""
        first, last = self.lifetimes[k]
        if last > first + 1:  # a fork's value, held across the branch that runs first
            held = f", held until {self.layers[last].layer.name} reads it"
        if self.input_buffer:
            if k == 0:
                return f"the input codes converted for {self.layers[0].layer.name}{held}"
            k -= 1
        return f"the outputs of {self.layers[k].layer.name}{held}"


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
    bits only where its consumers read bits, which for a pool depends on its own consumer:
    decided from the last layer back. Consumers of one value must agree."""
    n = len(model.layers)
    slot = {MODEL_INPUT: 0, **{lay.name: i + 1 for i, lay in enumerate(model.layers)}}
    readers: list[list[tuple[bool, str]]] = [[] for _ in range(n + 1)]
    bits = [False] * (n + 1)  # [0]: the model input, [i + 1]: layer i's outputs

    def agreed(k: int) -> bool:
        ways = {as_bits for as_bits, _ in readers[k]}
        if len(ways) > 1:
            split = {w: [name for as_bits, name in readers[k] if as_bits == w] for w in ways}
            what = "the model input" if k == 0 else model.layers[k - 1].name
            raise FirmwareError(f"{model.name}: {what} is read as bits by {split[True]} and as "
                                f"int8 by {split[False]}; one storage serves all its readers")
        return ways == {True}

    for i in range(n - 1, -1, -1):
        bits[i + 1] = agreed(i + 1)  # its readers all come later
        layer = model.layers[i]
        as_bits = op(layer).reads_bits(layer, bits[i + 1])
        for name in model.inputs_of(i):
            readers[slot[name]].append((as_bits, layer.name))
    bits[0] = agreed(0)
    return bits


def produced_channels(model: Model, name: str) -> int:
    """Channels of a pixel of what `name` gives (0: a flat vector): a frame layer's output,
    or the model input as its first reader takes it (qflow_model_run packs it so)."""
    if name == MODEL_INPUT:
        return frame_channels(model.layers[0])
    shape = getattr(model.layers[[lay.name for lay in model.layers].index(name)],
                    "out_shape", None)
    return 0 if shape is None else int(shape[2])


def first_fit(items: list[tuple[int, int, int]]) -> list[int]:
    """Offsets of items (bytes, first step, last step) in one arena: items that live at a
    common step never overlap. TensorFlow Lite Micro's greedy planner: the largest first,
    each at the lowest offset clear of the items placed so far that live with it."""
    offsets = [0] * len(items)
    placed: list[int] = []
    for k in sorted(range(len(items)), key=lambda k: (-items[k][0], items[k][1], k)):
        size, first, last = items[k]
        at = 0
        for o, s in sorted((offsets[j], items[j][0]) for j in placed
                           if items[j][1] <= last and first <= items[j][2]):
            if at + size <= o:
                break
            at = max(at, o + s)
        offsets[k] = at
        placed.append(k)
    return offsets


def plan(model: Model) -> Plan:
    """Kernels, stored arrays and the arena for a model.

    A buffer lives from the step that writes it to its last reader's. In a chain buffer k is
    written by stage k and read by stage k + 1 only, so only a layer's input, its output
    and its kernel's scratch live at once: even buffers sit at the arena's start, odd ones
    at its end, the scratch in the gap between the two a layer uses, and the arena is the
    largest of these sums over the layers (the least any placement can do). A graph's
    buffers (a fork's held across its branch) and scratches go where `first_fit` puts
    them."""
    model.validate(model.name)
    bits = storage(model)
    slot = {MODEL_INPUT: 0, **{lay.name: i + 1 for i, lay in enumerate(model.layers)}}
    layers: list[LayerPlan] = []
    for i, layer in enumerate(model.layers):
        # a flat layer after a frame reads it as the frame's pixels
        source = model.inputs_of(i)[0]
        pixel = frame_channels(layer) or produced_channels(model, source)
        layers.append(op(layer).plan_layer(i, layer, bits_out=bits[i + 1],
                                           in_pixel=pixel if bits[slot[source]] else 0))
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
    last = len(layers) - 1

    def buffer_of(name: str) -> int | None:
        k = slot[name]
        return (0 if input_buffer else None) if k == 0 else k - 1 + shift

    reads = [tuple(buffer_of(name) for name in model.inputs_of(i)) for i in range(len(layers))]
    writes = [i + shift if i < last or coded else None for i in range(len(layers))]
    born = ([-1] if input_buffer else []) + list(range(len(sizes) - shift))
    lifetimes = [(b, max([i for i, r in enumerate(reads) if k in r], default=b))
                 for k, b in enumerate(born)]
    if model.is_chain:
        offsets, scratch, arena = alternating(sizes, reads, writes, layers)
    else:
        # in whole words: bit buffers are read as words
        items = [(-(-s // 4) * 4, b, e) for s, (b, e) in zip(sizes, lifetimes, strict=True)]
        items += [(-(-lp.scratch_bytes // 4) * 4, i, i) for i, lp in enumerate(layers)]
        placed = first_fit(items)
        arena = max([o + s for o, (s, _, _) in zip(placed, items, strict=True)] + [0])
        offsets = placed[:len(sizes)]
        scratch = [o if lp.scratch_bytes else 0
                   for o, lp in zip(placed[len(sizes):], layers, strict=True)]
    return Plan(model, layers, input_buffer, sizes, offsets, scratch, arena, reads, writes,
                lifetimes)


def alternating(sizes: list[int], reads: list[tuple[int | None, ...]],
                writes: list[int | None], layers: list[LayerPlan]
                ) -> tuple[list[int], list[int], int]:
    """A chain's (offsets, scratch offsets, arena): even buffers at the arena's start, odd
    ones at its end (see plan)."""

    def size(k: int | None) -> int:
        return 0 if k is None else sizes[k]

    uses = [(r[0], w) for r, w in zip(reads, writes, strict=True)]
    arena = max([size(a) + size(b) + lp.scratch_bytes
                 for (a, b), lp in zip(uses, layers, strict=True)] + sizes + [0])
    offsets = [0 if k % 2 == 0 else arena - s for k, s in enumerate(sizes)]
    # a layer's scratch follows the one of its buffers at the arena's start
    scratch = [next((sizes[k] for k in (a, b) if k is not None and k % 2 == 0), 0)
               for a, b in uses]
    return offsets, scratch, arena
