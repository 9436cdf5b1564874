"""Golden model throughput against Brevitas' forward and qonnx's executor, measured in the
same run on one thread each: BNN-PYNQ TFC-w1a1 (batch 1000; targets >= 3x Brevitas,
>= 1000x the executor) and CNV-w1a1 (batch 200; reported, no target yet)."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from flow import golden
from flow.atomic import write_json
from flow.export import export_qonnx
from flow.lower import lower
from flow.reference import qonnx_outputs
from flow.train.examples import bnn_pynq, input_shape

TARGETS = {"vs_brevitas": 3.0, "vs_qonnx_executor": 1000.0}  # on TFC-w1a1


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(name: str, batch: int, executor_samples: int, repeats: int) -> dict[str, Any]:
    """Seconds per sample of each, on the same random inputs, and whether they agree."""
    model = bnn_pynq(name, seed=0)
    shape = input_shape(name)
    x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_qonnx(model, torch.rand(1, *shape), Path(tmp) / f"{name}.onnx")
        ir = lower(path)
        n_exec = executor_samples
        executed = qonnx_outputs(path, x[:n_exec])  # warm: sessions and shapes built once
        t_exec = best_of(lambda: qonnx_outputs(path, x[:n_exec]), 1) / n_exec
    xt = torch.from_numpy(x)
    with torch.no_grad():
        t_brevitas = best_of(lambda: model(xt), repeats) / batch
        brevitas_out = model(xt).numpy()
    golden.run(ir, x[:2])  # weights converted once, as in any run over many batches
    t_golden = best_of(lambda: golden.run(ir, x), repeats) / batch
    ours = golden.run(ir, x).reshape(batch, -1)
    return {
        "model": f"BNN-PYNQ {name} (random weights)", "batch": batch,
        "executor_samples": n_exec,
        "golden_samples_per_s": 1 / t_golden,
        "brevitas_samples_per_s": 1 / t_brevitas,
        "qonnx_executor_samples_per_s": 1 / t_exec,
        "speedup_vs_brevitas": t_brevitas / t_golden,
        "speedup_vs_qonnx_executor": t_exec / t_golden,
        "equal_qonnx_executor": bool(np.array_equal(ours[:n_exec], executed)),
        "argmax_equal_brevitas": bool(np.array_equal(ours.argmax(1), brevitas_out.argmax(1))),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="build/bench/golden.json")
    p.add_argument("--batch", type=int, default=1000, help="TFC batch")
    p.add_argument("--cnv-batch", type=int, default=200)
    p.add_argument("--executor-samples", type=int, default=50)
    a = p.parse_args()
    torch.set_num_threads(1)  # one core each (torch and numpy's BLAS): a per-core comparison
    threadpool_limits(1)
    tfc = measure("tfc-w1a1", a.batch, a.executor_samples, 20)
    cnv = measure("cnv-w1a1", a.cnv_batch, min(a.executor_samples, 20), 3)
    r = {"threads": 1, **tfc, "cnv-w1a1": cnv, "targets": TARGETS}
    r["meets_targets"] = (tfc["speedup_vs_brevitas"] >= TARGETS["vs_brevitas"] and
                          tfc["speedup_vs_qonnx_executor"] >= TARGETS["vs_qonnx_executor"])
    write_json(Path(a.out), r)


if __name__ == "__main__":
    main()
