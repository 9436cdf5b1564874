"""The fuzzer's draw space: random Brevitas models, written here with brevitas.nn and
brevitas.quant directly (not through flow.train.models / flow.train.quantizers), so that qflow is tested
on models that nobody in qflow wrote.

Draw space (one seed and architecture -> one `spec`, a JSON-able dict, -> one model; see
`draw`):
- input: shape (F,) or (C, H, W) with 2 <= F <= 40, C in 1..3, H, W in 1..6 (a Flatten
  follows the input quantizer of a rank-3 input); values normal around 0.3 times a random
  gain, plus an all-zero sample and samples exactly halfway between two levels of the
  input quantizer (its rounding ties);
- input quantizer (QuantIdentity): Int8ActPerTensorFloat, Uint8ActPerTensorFloat,
  Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint, ShiftedUint8ActPerTensorFloat
  at 2..8 bits, SignedBinaryActPerTensorConst, SignedTernaryActPerTensorConst;
- depth 1..4 QuantLinear layers, widths 3..40 (odd and even; the last 2..11), weights
  normal at a random magnitude, quantized by SignedBinaryWeightPerTensorConst,
  SignedTernaryWeightPerTensorConst, Int8WeightPerTensorFloat, Int8WeightPerChannelFloat,
  Int8WeightPerTensorFixedPoint, Int8WeightPerChannelFixedPoint or
  ShiftedUint8WeightPerTensorFloat (2..8 bits); no bias, a float bias, or a Brevitas
  Int8Bias / Int16Bias / Int32Bias (the activation before returns a QuantTensor);
- after each layer: no BatchNorm1d, one with random statistics (negative gammas
  included), or one whose channel 0 has gamma 0 (a constant channel);
- after each hidden layer, one activation: QuantReLU (Uint8ActPerTensorFloat or
  Uint8ActPerTensorFixedPoint, 1..8 bits), QuantHardTanh (Int8ActPerTensorFloatMinMaxInit
  or Int8ActPerTensorFixedPoint with a random clamp range, 2..8 / 1..8 bits, or the binary
  and ternary const quantizers) or QuantIdentity (Int8ActPerTensorFloat,
  Int8ActPerTensorFixedPoint, ShiftedUint8ActPerTensorFloat at 1..8 bits, or the binary
  and ternary const quantizers); nothing after the last layer (logits);
- scales: statistics-based scales set by three training-mode batches. Four draws in ten
  keep to power-of-two scales (fixed-point quantizers, binary/ternary weights with a
  constant scale 2^-4..2), whose float graph qflow lowers as exact; the others mix in
  float scales (and the binary/ternary weights' default 0.1), whose float32 graph rounds;
- CNNs (`draw(seed, "cnn")`, from a stream of their own: the MLP seeds are unchanged):
  input (C, H, W) with C in 1..3, H, W in 6..10 and the MLP's input quantizers; 1..2
  QuantConv2d blocks, kernel 1..3 (at most the frame), stride 1..2, padding 0..kernel-1,
  group 1 (1..6 channels out) or depthwise (about three in ten where C > 1), with the
  MLP's weight quantizers, biases, batch norms (BatchNorm2d) and activations; after the
  activation, in one block in four each, an nn.MaxPool2d (Brevitas has no QuantMaxPool2d)
  or a TruncAvgPool2d (RoundTo8bit or TruncTo8bit; its input a QuantTensor), kernel
  2..3, stride 1..kernel; then Flatten and 1..2 QuantLinear layers drawn as the MLP's;
- about one draw in twelve adds a construct qflow refuses by design: an activation
  quantizer after the last layer, or a float Tanh before the first hidden activation
  (the first conv's in a CNN).
  Any draw qflow refuses must end in a LoweringError / IRError naming the file and the
  node or graph ("refused").
Nothing is excluded from this space to hide a failure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Quantizers drawn, by role; a power-of-two draw (exact float graph) keeps to the second set.
WEIGHT_QUANTS = ("binary", "ternary", "int_tensor", "int_channel", "fixed_tensor",
                 "fixed_channel", "shifted")
WEIGHT_QUANTS_PO2 = ("binary", "ternary", "fixed_tensor", "fixed_channel")
INPUT_QUANTS = ("int", "uint", "fixed", "ufixed", "shifted", "binary", "ternary")
INPUT_QUANTS_PO2 = ("fixed", "ufixed", "binary", "ternary")
# activation module -> the quantizers drawn for it
ACT_QUANTS = {"relu": ("uint", "ufixed"), "hardtanh": ("int_minmax", "fixed", "binary", "ternary"),
              "identity": ("int", "fixed", "shifted", "binary", "ternary")}
ACT_QUANTS_PO2 = {"relu": ("ufixed",), "hardtanh": ("fixed", "binary", "ternary"),
                  "identity": ("fixed", "binary", "ternary")}
MULTI_BIT = ("int", "uint", "fixed", "ufixed", "shifted", "int_minmax")
BIASES = (None, "float", "int8", "int16", "int32")  # None: no bias; intN: Brevitas IntNBias
# None: no batch norm; "dead": random statistics with gamma 0 on channel 0 (a constant channel)
BATCH_NORMS = (None, "random", "random", "dead")
REFUSALS = ("final_act", "tanh")  # constructs qflow refuses by design (module docstring)


ARCHS = ("mlp", "cnn")
POOLS = (None, None, "max", "avg")  # after a conv block's activation
AVG_ROUNDINGS = ("round", "trunc")  # TruncAvgPool2d's RoundTo8bit (its default), TruncTo8bit


class _Drawer:
    """The random choices shared by both architectures, in the order the MLP draw has
    always made them (existing seeds draw the same models)."""

    def __init__(self, rng: np.random.Generator, po2: bool) -> None:
        self.rng, self.po2 = rng, po2
        self.acts, self.weights, self.inputs = (
            (ACT_QUANTS_PO2, WEIGHT_QUANTS_PO2, INPUT_QUANTS_PO2) if po2 else
            (ACT_QUANTS, WEIGHT_QUANTS, INPUT_QUANTS))

    def bits(self, lo: int) -> int:
        return int(self.rng.integers(lo, 9))

    def act(self) -> dict[str, Any]:
        rng = self.rng
        module = str(rng.choice(list(self.acts)))
        quant = str(rng.choice(self.acts[module]))
        spec: dict[str, Any] = {"module": module, "quant": quant}
        if quant in MULTI_BIT:
            # Brevitas exports no 1-bit quantizer with a zero point or a MinMax init
            spec["bits"] = self.bits(2 if quant in ("int_minmax", "shifted") else 1)
        if module == "hardtanh" and quant in MULTI_BIT:  # the clamp's range
            lo = -float(rng.uniform(0.1, 4))
            spec.update(min_val=lo, max_val=float(rng.uniform(0.1, 4)) if rng.random() < 0.7
                        else -lo)
        return spec

    def weight(self) -> dict[str, Any]:
        wq = str(self.rng.choice(self.weights))
        weight: dict[str, Any] = {"quant": wq}
        if wq in ("binary", "ternary"):  # Brevitas' constant scale is 0.1 unless po2
            weight["scale"] = float(2.0 ** self.rng.integers(-4, 2)) if self.po2 else 0.1
        else:
            weight["bits"] = self.bits(2)
        return weight

    def weighted(self, out: int | None, act: bool) -> dict[str, Any]:
        """A QuantLinear's or QuantConv2d's weights, bias, batch norm and activation; a
        dense layer draws its width (`out` None): 3..40 hidden, 2..11 for the logits."""
        rng = self.rng
        weight = self.weight()
        if out is None:
            out = int(rng.integers(3, 41)) if act else int(rng.integers(2, 12))
        return {"out": out,
                "bias": BIASES[int(rng.integers(len(BIASES)))], "weight": weight,
                "weight_gain": float(10 ** rng.uniform(-1.5, 0.5)),
                "bn": BATCH_NORMS[int(rng.integers(len(BATCH_NORMS)))],
                "act": self.act() if act else None}

    def dense(self, depth: int) -> list[dict[str, Any]]:
        return [self.weighted(None, k < depth - 1) for k in range(depth)]

    def tail(self, seed: int, shape: list[int], in_q: str, layers: list[dict[str, Any]],
             hidden_act: bool) -> dict[str, Any]:
        """The refusal, the input quantizer's bits and gain: drawn last."""
        rng = self.rng
        refuse = str(rng.choice(REFUSALS)) if rng.random() < 1 / 12 else None
        if refuse == "tanh" and not hidden_act:  # no hidden activation to put the Tanh before
            refuse = "final_act"
        return {"seed": seed, "po2": self.po2, "input_shape": shape,
                "input": {"quant": in_q, **({"bits": self.bits(2)} if in_q in MULTI_BIT else {})},
                "input_gain": float(10 ** rng.uniform(-1, 1)), "layers": layers,
                "refuse": refuse}


def draw(seed: int, arch: str = "mlp") -> dict[str, Any]:
    """The random architecture of one seed, as a JSON-able spec (see the module docstring);
    arch "both" picks MLP or CNN from a stream of its own."""
    if arch == "both":
        arch = ARCHS[int(np.random.default_rng([seed, 1]).integers(len(ARCHS)))]
    return draw_cnn(seed) if arch == "cnn" else draw_mlp(seed)


def arch_of(spec: dict[str, Any]) -> str:
    return "cnn" if "convs" in spec else "mlp"


def draw_mlp(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    d = _Drawer(rng, bool(rng.random() < 0.4))
    rank = int(rng.choice([1, 3]))
    if rank == 1:
        shape = [int(rng.integers(2, 41))]
    else:
        shape = [int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 7))]
    in_q = str(rng.choice(d.inputs))
    depth = int(rng.integers(1, 5))
    layers = d.dense(depth)
    return d.tail(seed, shape, in_q, layers, depth > 1)


def draw_cnn(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 2])  # not the MLP's stream: another model per seed
    d = _Drawer(rng, bool(rng.random() < 0.4))
    shape = [int(rng.integers(1, 4)), int(rng.integers(6, 11)), int(rng.integers(6, 11))]
    in_q = str(rng.choice(d.inputs))
    c, h, w = shape
    convs = []
    for _ in range(int(rng.integers(1, 3))):
        k = int(rng.integers(1, min(3, h, w) + 1))
        stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, k))
        depthwise = c > 1 and bool(rng.random() < 0.3)
        conv = d.weighted(c if depthwise else int(rng.integers(1, 7)), True)
        h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        pool = POOLS[int(rng.integers(len(POOLS)))] if min(h, w) >= 2 else None
        if pool == "avg" and (conv.get("act") or {}).get("quant") == "shifted":
            pool = "max"  # Brevitas exports no TruncAvgPool2d of an input with a zero point
        conv.update(kernel=k, stride=stride, pad=pad, depthwise=depthwise, pool=pool)
        if pool:
            pk = int(rng.integers(2, min(3, h, w) + 1))
            ps = int(rng.integers(1, pk + 1))
            conv.update(pool_kernel=pk, pool_stride=ps)
            if pool == "avg":
                conv["avg_rounding"] = str(rng.choice(AVG_ROUNDINGS))
            h, w = (h - pk) // ps + 1, (w - pk) // ps + 1
        conv["out_size"] = [h, w]  # after the pool
        convs.append(conv)
        c = conv["out"]
    layers = d.dense(int(rng.integers(1, 3)))
    return {**d.tail(seed, shape, in_q, layers, True), "convs": convs}


def _act_quant(spec: dict[str, Any]) -> Any:
    from brevitas import quant as bq

    table = {"int": bq.Int8ActPerTensorFloat, "uint": bq.Uint8ActPerTensorFloat,
             "fixed": bq.Int8ActPerTensorFixedPoint, "ufixed": bq.Uint8ActPerTensorFixedPoint,
             "shifted": bq.ShiftedUint8ActPerTensorFloat,
             "int_minmax": bq.Int8ActPerTensorFloatMinMaxInit,
             "binary": bq.SignedBinaryActPerTensorConst,
             "ternary": bq.SignedTernaryActPerTensorConst}
    q = table[spec["quant"]]
    return q.let(bit_width=spec["bits"]) if "bits" in spec else q


def _weight_quant(spec: dict[str, Any]) -> Any:
    from brevitas import quant as bq
    from brevitas.quant import fixed_point  # its per-channel quantizer is not re-exported

    table = {"binary": bq.SignedBinaryWeightPerTensorConst,
             "ternary": bq.SignedTernaryWeightPerTensorConst,
             "int_tensor": bq.Int8WeightPerTensorFloat,
             "int_channel": bq.Int8WeightPerChannelFloat,
             "fixed_tensor": bq.Int8WeightPerTensorFixedPoint,
             "fixed_channel": fixed_point.Int8WeightPerChannelFixedPoint,
             "shifted": bq.ShiftedUint8WeightPerTensorFloat}
    q = table[spec["quant"]]
    if "scale" in spec:
        return q.let(scaling_const=spec["scale"])
    return q.let(bit_width=spec["bits"]) if "bits" in spec else q


def random_inputs(spec: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """Float inputs of the spec's shape: normal, scaled by its input gain, shifted a little."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 1.0, (n, *spec["input_shape"])) * spec["input_gain"]
    return x.astype(np.float32)


def build(spec: dict[str, Any]) -> Any:
    """The spec as a Brevitas model in eval mode, statistics-based scales set by a few
    training-mode batches of its inputs, batch norm statistics randomized."""
    import torch
    from brevitas import quant as bq
    from brevitas.nn import (
        QuantConv2d,
        QuantHardTanh,
        QuantIdentity,
        QuantLinear,
        QuantReLU,
        TruncAvgPool2d,
    )
    from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit
    from torch import nn

    torch.manual_seed(spec["seed"])
    convs, layers = spec.get("convs", []), spec["layers"]
    blocks = convs + layers
    # a quantized bias and an average pool take their input's scale: the module before
    # returns a QuantTensor (a max pool passes it on)
    wants_quant = [lay["bias"] not in (None, "float") for lay in blocks] + [False]
    modules: list[nn.Module] = [QuantIdentity(act_quant=_act_quant(spec["input"]),
                                              return_quant_tensor=wants_quant[0])]
    if len(spec["input_shape"]) > 1 and not convs:
        modules.append(nn.Flatten())
    width = spec["input_shape"][0] if convs else int(np.prod(spec["input_shape"]))
    biases = {"int8": bq.Int8Bias, "int16": bq.Int16Bias, "int32": bq.Int32Bias}
    kinds = {"relu": QuantReLU, "hardtanh": QuantHardTanh, "identity": QuantIdentity}
    for k, lay in enumerate(blocks):
        is_conv = k < len(convs)
        quant = {"weight_quant": _weight_quant(lay["weight"]),
                 "bias_quant": biases.get(lay["bias"]), "bias": lay["bias"] is not None}
        if is_conv:
            weighted: nn.Module = QuantConv2d(
                width, lay["out"], lay["kernel"], stride=lay["stride"], padding=lay["pad"],
                groups=width if lay["depthwise"] else 1, **quant)
        else:
            weighted = QuantLinear(width, lay["out"], **quant)
        with torch.no_grad():
            weighted.weight.normal_(0.0, lay["weight_gain"])
        modules.append(weighted)
        if lay["bn"]:
            modules.append((nn.BatchNorm2d if is_conv else nn.BatchNorm1d)(lay["out"]))
        act = lay["act"]
        if k == len(blocks) - 1 and spec["refuse"] == "final_act":
            act = {"module": "identity", "quant": "int", "bits": 4}
        if act is not None:
            if spec["refuse"] == "tanh" and k == 0:  # before the first hidden activation
                modules.append(nn.Tanh())
            extra = {key: act[key] for key in ("min_val", "max_val") if key in act}
            pool = lay.get("pool")
            modules.append(kinds[act["module"]](
                act_quant=_act_quant(act), **extra,
                return_quant_tensor=wants_quant[k + 1] or pool == "avg"))
            if pool == "max":
                modules.append(nn.MaxPool2d(lay["pool_kernel"], lay["pool_stride"]))
            elif pool == "avg":
                rounding = {"round": RoundTo8bit, "trunc": TruncTo8bit}[lay["avg_rounding"]]
                modules.append(TruncAvgPool2d(lay["pool_kernel"], lay["pool_stride"],
                                              trunc_quant=rounding))
        if k == len(convs) - 1:
            modules.append(nn.Flatten())
            width = lay["out"] * int(np.prod(lay["out_size"]))
        else:
            width = lay["out"]
    model = nn.Sequential(*modules)
    model.train()
    with torch.no_grad():
        for b in range(3):
            model(torch.from_numpy(random_inputs(spec, 32, spec["seed"] + 1000 + b)))
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
        for m, lay in zip(norms, [lay for lay in blocks if lay["bn"]], strict=True):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c) * 2)
            m.running_var.copy_(torch.rand(c) * 5 + 0.05)
            m.weight.copy_(torch.randn(c))  # negative gammas flip channels
            m.bias.copy_(torch.randn(c))
            if lay["bn"] == "dead":
                m.weight[0] = 0.0
    return model.eval()
