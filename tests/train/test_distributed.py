"""`qflow train --nproc N`: DDP under torchrun on CPU (gloo) trains the same model as one
process with the same global batch, and only rank 0 writes the build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from flow.train.distributed import launch


def digits_config(tmp_path: Path, epochs: int) -> Path:
    cfg = {"name": "ddp", "seed": 3, "data": {"name": "digits"},
           "model": {"hidden": [24], "weight": {"quant": "int", "bits": 4},
                     "act": {"quant": "uint", "bits": 4}},
           "train": {"epochs": epochs, "batch_size": 64, "lr": 0.01},
           "hardware": {"target_cycles": 64}}
    path = tmp_path / f"ddp{epochs}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def weights(build: Path) -> dict[str, torch.Tensor]:
    return torch.load(build / "checkpoint.pt", weights_only=True)["model"]


@pytest.mark.slow  # four torchrun launches, ~65 s on 2 cores
def test_two_processes_train_what_one_process_trains(tmp_path: Path) -> None:
    config = digits_config(tmp_path, 2)
    launch(config, tmp_path / "one", nproc=1)
    launch(config, tmp_path / "two", nproc=2)
    one, two = (json.loads((tmp_path / b / "train.json").read_text()) for b in ("one", "two"))
    assert one["distributed"] == {"world_size": 1, "backend": "gloo"}
    assert two["distributed"] == {"world_size": 2, "backend": "gloo"}
    for a, b in zip(one["epochs"], two["epochs"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=0.01)
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.allclose(w1[k].float(), w2[k].float(), atol=1e-4), k
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # --resume: two more epochs on two processes continue the 2-epoch run
    launch(digits_config(tmp_path, 3), tmp_path / "two", nproc=2, resume=True)
    more = json.loads((tmp_path / "two" / "train.json").read_text())
    assert [e["epoch"] for e in more["epochs"]] == [1, 2, 3]
    assert more["epochs"][:2] == two["epochs"]


def test_launch_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--master-addr"):
        launch(tmp_path / "c.yaml", None, nproc=1, nnodes=2, node_rank=1)
    with pytest.raises(ValueError, match="node-rank"):
        launch(tmp_path / "c.yaml", None, nproc=1, nnodes=2, node_rank=2, master_addr="h")
