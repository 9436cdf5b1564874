"""Golden model throughput on TFC-w1a1 (batch 1000) against Brevitas' forward and qonnx's
executor, measured in the same run. Targets: >= 3x Brevitas, >= 1000x the executor."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from flow import golden
from flow.atomic import write_json
from flow.examples import bnn_pynq
from flow.export import export_qonnx
from flow.lower import lower
from flow.verify import qonnx_outputs


def best_of(fn: callable, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="build/bench/golden.json")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--executor-samples", type=int, default=50)
    a = p.parse_args()
    torch.set_num_threads(1)  # one core each (torch and numpy's BLAS): a per-core comparison
    threadpool_limits(1)
    model = bnn_pynq("tfc-w1a1", seed=0)
    x = np.random.default_rng(0).random((a.batch, 1, 28, 28), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_qonnx(model, torch.rand(1, 1, 28, 28), Path(tmp) / "tfc.onnx")
        ir = lower(path)
        n_exec = a.executor_samples
        t_exec = best_of(lambda: qonnx_outputs(path, x[:n_exec]), 1) / n_exec
    xt = torch.from_numpy(x)
    with torch.no_grad():
        t_brevitas = best_of(lambda: model(xt), 20) / a.batch
    t_golden = best_of(lambda: golden.run(ir, x), 20) / a.batch
    same = np.array_equal(golden.run(ir, x).argmax(1), model(xt).detach().numpy().argmax(1))
    r = {
        "model": "BNN-PYNQ TFC-w1a1 (random weights)", "batch": a.batch, "threads": 1,
        "golden_samples_per_s": 1 / t_golden,
        "brevitas_samples_per_s": 1 / t_brevitas,
        "qonnx_executor_samples_per_s": 1 / t_exec,
        "speedup_vs_brevitas": t_brevitas / t_golden,
        "speedup_vs_qonnx_executor": t_exec / t_golden,
        "targets": {"vs_brevitas": 3.0, "vs_qonnx_executor": 1000.0},
        "argmax_equal_brevitas": bool(same),
    }
    r["meets_targets"] = (r["speedup_vs_brevitas"] >= 3.0 and
                          r["speedup_vs_qonnx_executor"] >= 1000.0)
    write_json(Path(a.out), r)


if __name__ == "__main__":
    main()
