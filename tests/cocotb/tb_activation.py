"""cocotb bench of rtl/activation/activation.sv against the golden model's activation step
(flow.golden.requant.prepare_activation): one IR dense layer's thresholds, requantization or
none, random accumulators over the layer's whole range for random folds, each fold's ROM
word addressed rom_latency cycles ahead of its accumulators, each code checked
activation_latency cycles after them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from tb_common import first_difference, job, pack, pipeline_outputs

from flow.backends.rtl import pipeline
from flow.golden.requant import prepare_activation
from flow.ir import load
from flow.packing import encode, pack_words


@cocotb.test()
async def activation_codes(dut: Any) -> None:
    j = job()
    layer = load(Path(j["ir"])).layers[0]
    pe, act = layer.folding.pe, layer.activation
    folds, acc_bits = layer.out_features // pe, layer.acc_dtype.bits
    rng = random.Random(j["seed"])
    cases = [(rng.randrange(folds), [rng.randint(layer.acc_min, layer.acc_max)
                                     for _ in range(pe)]) for _ in range(j["vectors"])]
    cases += [(f, [v] * pe) for f in range(folds) for v in (layer.acc_min, layer.acc_max)]
    rom = pipeline.ROM_LATENCY
    inputs = [{"addr": cases[t][0] if t < len(cases) else 0,
               "acc": pack(cases[t - rom][1], acc_bits) if t >= rom else 0}
              for t in range(len(cases) + rom)]
    latency = pipeline.activation_latency(act)
    activate = prepare_activation(act, np.int64)
    want = []
    for f, acc in cases:
        full = np.zeros((1, layer.out_features), np.int64)
        full[0, f * pe:(f + 1) * pe] = acc
        codes = activate(full)[0, f * pe:(f + 1) * pe]
        want.append(pack_words(encode(codes, layer.out_dtype)[None, :], layer.out_dtype.bits)[0])
    got = await pipeline_outputs(dut, inputs, "y", latency)
    assert not (bad := first_difference(got[rom:], want)), bad
