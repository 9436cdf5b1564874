"""RTL simulation speed (Verilator; the testbench drives and records the streams itself):

(a) the TFC-like top (784-64-64-64-10 BIPOLAR at PE/SIMD 16/49, 8/8, 8/8, 10/8);
(b) Brevitas' CNV-w1a1 (brevitas_examples bnn_pynq, random weights) at finn-examples'
    folding (the cnv-w1a1 preset, 32,768 cycles a frame): agreement with golden, measured
    initiation interval and latency against the generator's, and the wall time of a frame
    in steady state (target <= 5 s, so that `qflow sim` over 100 test images is practical).

    python -m bench.bench_rtl [--frames N] [--cnv-frames N] [--only tfc,cnv]
                              [--out build/bench/rtl.json]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from flow import golden
from flow.atomic import write_json
from flow.backends import rtl
from flow.backends.check import agreement
from flow.ir import Model
from flow.synthetic import random_codes, random_model

CNV_SECONDS_PER_FRAME_TARGET = 5.0


def tfc_model() -> Model:
    return random_model([784, 64, 64, 64, 10], ["BIPOLAR"] * 4, ["BIPOLAR"] * 3, "BIPOLAR",
                        [(16, 49), (8, 8), (8, 8), (10, 8)], seed=0, name="tfc_bench")


def cnv_model(folder: Path) -> Model:
    """CNV-w1a1 from Brevitas (random weights, randomized batch norms), exported, lowered and
    folded by the cnv-w1a1 preset."""
    import torch

    from flow.export import configure, export_qonnx
    from flow.lower import lower
    from flow.train.examples import bnn_pynq, input_shape

    onnx = export_qonnx(bnn_pynq("cnv-w1a1", 0), torch.rand(1, *input_shape("cnv-w1a1")),
                        folder / "cnv_w1a1.onnx")
    model = lower(onnx, name="cnv_w1a1")
    configure(model, {"preset": "cnv-w1a1"})
    return model


def measure(model: Model, build_dir: Path, codes: np.ndarray) -> dict[str, Any]:
    """Generate, build (timed with a first one-frame run), then simulate `codes`."""
    rtl.generate(model, build_dir)
    t0 = time.perf_counter()
    rtl.simulate(model, build_dir, codes[:1])
    build_s = time.perf_counter() - t0
    outputs, r = rtl.simulate(model, build_dir, codes)
    ii = r["initiation_interval_cycles"]
    return {
        "frames": len(codes),
        "agree": agreement(outputs, golden.run_codes(model, codes))["rtl"]["equal"] == len(codes),
        "initiation_interval_cycles": ii,
        "expected_initiation_interval": r["expected_initiation_interval"],
        "latency_cycles": r["latency_cycles"],
        "expected_latency": r["expected_latency"],
        "cycles_per_second_wall": r["cycles_per_second_wall"],
        # a frame in steady state: one interval of simulated cycles
        "seconds_per_frame_wall": r["expected_initiation_interval"] / r["cycles_per_second_wall"],
        "frames_per_second_wall": r["frames_per_second_wall"],
        "build_and_first_run_seconds": build_s,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1000, help="TFC frames")
    p.add_argument("--cnv-frames", type=int, default=8)
    p.add_argument("--only", default="tfc,cnv", help="comma-separated cases: tfc, cnv")
    p.add_argument("--out", default="build/bench/rtl.json")
    a = p.parse_args(argv)
    out = Path(a.out)
    result: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version()}
    cases = a.only.split(",")
    if "tfc" in cases:
        model = tfc_model()
        result["rtl_sim_tfc"] = measure(model, out.parent / "rtl_tfc",
                                        random_codes(model, a.frames))
    if "cnv" in cases:
        folder = out.parent / "rtl_cnv"
        folder.mkdir(parents=True, exist_ok=True)
        model = cnv_model(folder)
        images = np.random.default_rng(0).random((a.cnv_frames, 3, 32, 32), dtype=np.float32)
        r = measure(model, folder, golden.quantize_input(model.input, images))
        r["seconds_per_frame_target"] = CNV_SECONDS_PER_FRAME_TARGET
        r["meets_target"] = r["seconds_per_frame_wall"] <= CNV_SECONDS_PER_FRAME_TARGET
        result["rtl_sim_cnv_w1a1"] = r
    write_json(out, result)
    return result


if __name__ == "__main__":
    print(main())
