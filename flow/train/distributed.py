"""`qflow train CONFIG --nproc N [--nnodes M --node-rank R --master-addr HOST]`: one model
trained by PyTorch DistributedDataParallel under torchrun.

`launch` starts `torchrun` (torch.distributed.run) with this module as the worker; every
worker runs flow.train.trainer.train with its `Shard`: gloo on CPU, NCCL when GPUs are
present (one per local rank). `train.batch_size` is the global batch, split evenly over the
processes; batch norm computes its statistics over the global batch (an all-reduce of sums),
so N processes train the same model as one process with the same global batch, up to float
summation order. Rank 0 alone writes the partial folder, checkpoints and train.json, and
sends the checkpoint to the other ranks on --resume.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger("qflow.distributed")
DEFAULT_PORT = 29500


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover every rank's share of the batch (sums of
    x and x^2 all-reduced with autograd); torch's SyncBatchNorm is GPU-only. Evaluation is
    plain batch norm on the running statistics, so the state dict is unchanged."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"batch norm expects (N, C, ...) input, got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = torch.tensor([x.numel() / c], dtype=x.dtype, device=x.device)
        stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c:2 * c] / n - mean * mean
        if self.track_running_stats and self.running_mean is not None \
                and self.running_var is not None and self.num_batches_tracked is not None:
            m = self.momentum if self.momentum is not None else 0.1
            with torch.no_grad():
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
                self.num_batches_tracked.add_(1)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


@dataclass(frozen=True)
class Shard:
    """This process's place in a torchrun job."""

    rank: int
    world: int
    device: torch.device

    @property
    def lead(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model on this rank's device, batch norm over the global batch, in DDP."""
        from torch.nn.parallel import DistributedDataParallel

        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                # same parameters and buffers, another forward: the state dict is unchanged
                m.__class__ = GlobalBatchNorm  # type: ignore[assignment]
        model.to(self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def broadcast(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, t: Tensor) -> Tensor:
        t = t.clone()
        dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        dist.barrier()

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world, "backend": self.backend}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(config: Path, out: Path | None, nproc: int, nnodes: int = 1, node_rank: int = 0,
           master_addr: str | None = None, master_port: int | None = None,
           resume: bool = False) -> None:
    """Run the training of `config` under torchrun; raises RuntimeError when it fails."""
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError(f"--nproc {nproc} --nnodes {nnodes} --node-rank {node_rank}: need "
                         "nproc >= 1, nnodes >= 1 and 0 <= node-rank < nnodes")
    if nnodes > 1 and master_addr is None:
        raise ValueError("--master-addr: several machines need the address of node 0")
    port = master_port or (free_port() if nnodes == 1 else DEFAULT_PORT)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
           f"--nnodes={nnodes}", f"--node-rank={node_rank}",
           f"--master-addr={master_addr or '127.0.0.1'}", f"--master-port={port}",
           "-m", "flow.train.distributed", str(config)]
    if out is not None:
        cmd += ["--out", str(out)]
    if resume:
        cmd.append("--resume")
    log.info("train: torchrun, %d process(es) x %d node(s): %s", nproc, nnodes, " ".join(cmd))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    r = subprocess.run(cmd, env=env)
    if r.returncode:
        raise RuntimeError(f"{config}: distributed training failed (torchrun exit code "
                           f"{r.returncode}); `--resume` continues from the last checkpoint")


def worker(argv: list[str] | None = None) -> int:
    """One torchrun worker: join the process group, train, leave."""
    from flow.train import config as configs
    from flow.train.trainer import train

    p = argparse.ArgumentParser(prog="python -m flow.train.distributed")
    p.add_argument("config")
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true")
    a = p.parse_args(argv)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    shard = Shard(rank, world, device)
    logging.basicConfig(level=logging.WARNING, format=f"rank {rank}: %(name)s: %(message)s")
    logging.getLogger("qflow").setLevel(logging.INFO if shard.lead else logging.WARNING)
    dist.init_process_group(shard.backend, rank=rank, world_size=world)
    try:
        out = Path(a.out) if a.out else Path("build") / configs.load(Path(a.config))["name"]
        r = train(Path(a.config), out, a.resume, shard)
        if shard.lead:
            log.info("train: %d processes, test accuracy %.4f -> %s", world,
                     r["test_accuracy"], out / "train.json")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(worker())
