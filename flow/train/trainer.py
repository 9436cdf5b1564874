"""`qflow train CONFIG`: seeded quantization-aware training (or PTQ with calibration).

A build folder holds: config.yaml (the config as used), checkpoint.pt, train.json
(per-epoch loss/accuracy, test accuracy, and the float baseline when asked). Training runs
in a partial folder beside it (`.<name>.partial`, checkpointed every epoch, so `--resume`
continues after a failure or Ctrl-C) and replaces the build only when it has finished: a
build never holds a config other than the one its checkpoint was trained with, nor the
exported files of an older model.

Under torchrun (`qflow train CONFIG --nproc N`, flow/train/distributed.py) every rank runs
this same code with a `Shard`: the model wrapped in DistributedDataParallel with batch norm
over the global batch, each global batch of `train.batch_size` split across the ranks by a
DistributedSampler, and only rank 0 writing the partial folder, checkpoints and train.json.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from flow import data as datasets
from flow.atomic import write_json, write_text
from flow.buildfolder import check_replaceable, install, is_build, location, mark, writing
from flow.train import models
from flow.train.checkpoint import (
    EPOCH_KEYS,
    RESUME_HINT,
    first_difference,
    first_line,
    load_checkpoint,
    resume_state,
    save_checkpoint,
    training_inputs,
)

if TYPE_CHECKING:
    from flow.train.distributed import Shard

log = logging.getLogger("qflow.train")


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    model.eval()
    # where the model's weights are (torch's int8 models hold none: the CPU)
    device = next(model.parameters(), torch.empty(0)).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(torch.from_numpy(x[i:i + batch]).to(device))
            correct += int((out.argmax(1).cpu().numpy() == y[i:i + batch]).sum())
    return correct / max(len(x), 1)


def make_optimizer(model: models.QuantNet, t: dict[str, Any]) -> torch.optim.Optimizer:
    if t["optimizer"] == "wage":  # integer weights on the k_G grid, stochastic updates
        from flow.train.lowprec import WageSGD

        return WageSGD(model.parameters(), t["lr"], model.wage_grad_bits, model.update_rng)
    opt_cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}.get(t["optimizer"])
    if opt_cls is None:
        raise ValueError(f"train.optimizer: {t['optimizer']!r} is not 'adam', 'sgd' or 'wage'")
    return opt_cls(model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])


def batches(n: int, batch_size: int, epoch: int, seed: int, shard: Shard | None
            ) -> Iterator[torch.Tensor]:
    """One epoch's sample indices, batch by batch: a permutation from the global RNG in one
    process; under torchrun, this rank's share of each global batch (DistributedSampler's
    stride over one seeded permutation per epoch, so that the ranks' shares of batch i
    together are the global batch i of a 1-process run with the same sampler)."""
    if shard is None:
        perm = torch.randperm(n)
        yield from (perm[i:i + batch_size] for i in range(0, n, batch_size))
        return
    from torch.utils.data import TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    sampler: DistributedSampler[Any] = DistributedSampler(
        TensorDataset(torch.arange(n)), num_replicas=shard.world, rank=shard.rank, shuffle=True,
        seed=seed)
    sampler.set_epoch(epoch)
    idx = torch.tensor(list(sampler))
    local = batch_size // shard.world
    yield from (idx[i:i + local] for i in range(0, len(idx), local))


def augment(x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
    """A training batch [N, C, H, W], each image shifted by up to spec["shift"] pixels each
    way (zero fill) and, with spec["flip"], mirrored left to right with probability 1/2; from
    the global RNG, which checkpoints carry."""
    n, _, h, w = x.shape
    if spec["flip"]:
        x = torch.where(torch.rand(n, 1, 1, 1, device=x.device) < 0.5, x.flip(-1), x)
    s = spec["shift"]
    if s:
        padded = nn.functional.pad(x, (s, s, s, s))
        dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1), device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, :, None]
        cols = (dx + torch.arange(w, device=x.device))[:, None, :]
        # advanced indices around a slice: the result is [N, H, W, C]
        x = padded[torch.arange(n, device=x.device)[:, None, None], :, rows, cols]
        x = x.permute(0, 3, 1, 2).contiguous()
    return x


def load_float_weights(model: models.QuantNet, float_model: models.QuantNet, why: str) -> None:
    """`model` takes the float twin's weights and batch norms; only its quantizers' own
    parameters (scales, clip values) stay at their init. Latent binary weights are scaled
    per layer into [-1, 1], where BinaryConnect keeps them and the STE passes gradient (their
    sign, and the batch norm after each layer, make the scale free)."""
    from brevitas.nn import QuantConv2d, QuantLinear

    theirs, ours = float_model.state_dict(), model.state_dict()
    stray = [k for k, v in theirs.items() if k not in ours or ours[k].shape != v.shape]
    stray += [k for k in ours if k not in theirs and "_quant" not in k]
    if stray:
        raise ValueError(f"{why}: the float twin's layers do not line up with the quantized "
                         f"model's (first mismatch: {stray[0]})")
    result = model.load_state_dict(theirs, strict=False)
    if model.binary_weights:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, QuantLinear | QuantConv2d):
                    m.weight.div_(m.weight.abs().max().clamp_min(1e-12))
    log.info("%s: float weights loaded (%d quantizer parameters left at their init)", why,
             len(result.missing_keys))


def _load_state(checkpoint: Path | None, cfg: dict[str, Any], shard: Shard | None
                ) -> dict[str, Any] | None:
    """The checkpoint to resume from (rank 0 reads it and sends it to every rank)."""
    state = None
    if checkpoint is not None and checkpoint.exists() and (shard is None or shard.lead):
        state = resume_state(checkpoint, cfg)
    if shard is not None:
        state = shard.broadcast(state)
    return state


def fit(model: models.QuantNet, ds: datasets.Dataset, cfg: dict[str, Any], epochs: int,
        desc: str, checkpoint: Path | None = None, resume: bool = False,
        shard: Shard | None = None) -> list[dict[str, float]]:
    """Train `model` for `epochs`; checkpoint each epoch when `checkpoint` is given (rank 0
    under torchrun)."""
    t = cfg["train"]
    if shard is not None and t["batch_size"] % shard.world:
        raise ValueError(f"train.batch_size: {t['batch_size']} global samples do not split "
                         f"evenly over {shard.world} processes")
    net = shard.wrap(model) if shard is not None else model
    opt = make_optimizer(model, t)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    history: list[dict[str, float]] = []
    start = 0
    state = _load_state(checkpoint, cfg, shard) if resume else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            if "update_rng" in state:
                model.update_rng.set_state(state["update_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{checkpoint}: does not fit this config's model and training "
                             f"({first_line(e)}); {RESUME_HINT}") from e
        history, start = state["history"], state["epoch"]
        log.info("resuming %s from epoch %d (%s)", desc, start, checkpoint)
    if shard is not None:  # each rank's own stream (dropout, stochastic quantizers, noise)
        torch.manual_seed(cfg["seed"] + 1_000_003 * (shard.rank + 1) + start)
    loss_fn = nn.CrossEntropyLoss()
    device = next(model.parameters()).device
    xt, yt = torch.from_numpy(ds.x_train).to(device), torch.from_numpy(ds.y_train).to(device)
    lead = shard is None or shard.lead
    aug = t.get("augment")  # config.load leaves unset optional sections out
    bar = tqdm(range(start, epochs), desc=desc, unit="epoch", initial=start, total=epochs,
               disable=None if lead else True)
    for epoch in bar:
        net.train()
        sums = torch.zeros(3, dtype=torch.float64)  # loss x samples, correct, samples
        for idx in batches(len(xt), t["batch_size"], epoch, cfg["seed"], shard):
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            out = net(augment(xt[idx], aug) if aug else xt[idx])
            loss = loss_fn(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.after_step()
            sums += torch.tensor([loss.item() * len(idx), int((out.argmax(1) == yt[idx]).sum()),
                                  len(idx)], dtype=torch.float64)
        sched.step()
        total, correct, n = (shard.sum(sums) if shard is not None else sums).tolist()
        rec = {"epoch": epoch + 1, "loss": total / max(n, 1), "train_accuracy": correct / max(n, 1),
               "val_accuracy": evaluate(model, ds.x_val, ds.y_val)}
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", val=f"{rec['val_accuracy']:.3f}")
        if bar.disable:  # no terminal: a log line per epoch instead of the bar
            log.info("%s epoch %d/%d: loss %.4f, val accuracy %.4f", desc, epoch + 1, epochs,
                     rec["loss"], rec["val_accuracy"])
        if checkpoint is not None and lead:
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                "update_rng": model.update_rng.get_state(), "history": history,
                "epoch": epoch + 1, "inputs": training_inputs(cfg)})
    return history


def calibrate(model: models.QuantNet, ds: datasets.Dataset, batches: int, batch_size: int) -> None:
    """Post-training calibration: collect activation statistics on training batches."""
    from brevitas.graph.calibrate import calibration_mode

    model.eval()
    with torch.no_grad(), calibration_mode(model):
        for i in range(batches):
            chunk = ds.x_train[i * batch_size:(i + 1) * batch_size]
            if len(chunk) == 0:
                break
            model(torch.from_numpy(chunk))


def partial_folder(build_dir: Path) -> Path:
    return build_dir.with_name(f".{build_dir.name}.partial")


TRAIN_FILES = ("config.yaml", "checkpoint.pt", "float_checkpoint.pt", "train.json")


def trained_from(build_dir: Path, cfg: dict[str, Any]) -> bool:
    """Whether build_dir holds a finished training of cfg (same training inputs); a build
    whose config the schema no longer takes is not."""
    from flow.train import config as configs

    if not (build_dir / "train.json").is_file() or not (build_dir / "config.yaml").is_file():
        return False
    try:
        before = configs.load(build_dir / "config.yaml")
    except configs.ConfigError:
        return False
    return training_inputs(before) == training_inputs(cfg)


def _start_partial(cfg: dict[str, Any], config_path: Path, build_dir: Path, resume: bool
                   ) -> Path:
    """The partial folder to train in: fresh, or for --resume the interrupted run's (or the
    finished build's training files, to train on), whose config must be this one."""
    partial = partial_folder(build_dir)
    if partial.exists() and not is_build(partial):
        raise ValueError(f"{partial}: the folder `qflow train` keeps an unfinished run in, but "
                         "qflow did not make it (no marker); move it away")
    if resume and not partial.is_dir() and (build_dir / "checkpoint.pt").is_file():
        partial.mkdir()
        mark(partial)
        for f in TRAIN_FILES:
            if (build_dir / f).is_file():
                shutil.copy2(build_dir / f, partial / f)
    if resume and partial.is_dir():
        from flow.train import config as configs

        if (partial / "config.yaml").is_file():
            before = configs.load(partial / "config.yaml")
            if training_inputs(before, epochs=False) != training_inputs(cfg, epochs=False):
                raise configs.ConfigError(
                    f"{config_path}: differs from the config of the run to resume "
                    f"({partial / 'config.yaml'}) in what training reads; train without "
                    "--resume to start over")
        return partial
    shutil.rmtree(partial, ignore_errors=True)  # marked: an earlier run's
    partial.mkdir(parents=True)
    mark(partial)
    return partial


def train(config_path: Path, build_dir: Path, resume: bool = False,
          shard: Shard | None = None) -> dict[str, Any]:
    from flow.train import config as configs

    cfg = configs.load(config_path)
    lead = shard is None or shard.lead
    # rank 0 holds the build's lock for the whole run; the others never write there
    with writing(build_dir, create=True) if lead else contextlib.nullcontext(
            location(build_dir)) as build_dir:
        if lead:
            check_replaceable(build_dir)
            partial = _start_partial(cfg, config_path, build_dir, resume)
            write_text(partial / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        else:
            partial = partial_folder(build_dir)  # rank 0's
        if shard is not None:
            shard.barrier()
        result = _train(cfg, partial, resume, shard)
        if lead:
            install(partial, build_dir)
            log.info("train: build %s complete (config.yaml, checkpoint.pt, train.json)",
                     build_dir)
        if shard is not None:
            shard.barrier()
    return result


def _train(cfg: dict[str, Any], build_dir: Path, resume: bool, shard: Shard | None = None
           ) -> dict[str, Any]:
    t = cfg["train"]
    ckpt = build_dir / "checkpoint.pt"
    float_ckpt = build_dir / "float_checkpoint.pt"
    lead = shard is None or shard.lead
    if resume and lead:  # a checkpoint that cannot be continued fails now, not after training
        resumed = ([float_ckpt] if t["mode"] == "ptq" or t["float_baseline"] else []) + \
            ([ckpt] if t["mode"] == "qat" else [])
        for path in resumed:
            if path.exists():
                resume_state(path, cfg)
    seed_all(cfg["seed"])
    ds = datasets.load(cfg["data"], cfg["seed"])
    log.info("data: %s, %d train / %d val / %d test, input %s", ds.name, len(ds.x_train),
             len(ds.x_val), len(ds.x_test), ds.input_shape)
    result: dict[str, Any] = {"name": cfg["name"], "mode": t["mode"], "dataset": ds.name,
                              "test_samples": len(ds.x_test)}
    if shard is not None:
        result["distributed"] = shard.describe()
    float_model = None
    if t["mode"] == "ptq" or t["float_baseline"]:
        seed_all(cfg["seed"])
        float_model = models.build(cfg["model"], ds.input_shape, ds.classes, quantized=False)
        hist = fit(float_model, ds, cfg, t.get("float_epochs") or t["epochs"], "float",
                   float_ckpt, resume, shard)
        result["float_epochs"] = hist
        result["float_test_accuracy"] = evaluate(float_model, ds.x_test, ds.y_test)
        log.info("float baseline: test accuracy %.4f", result["float_test_accuracy"])
    seed_all(cfg["seed"])
    if t["mode"] == "ptq":
        assert float_model is not None  # mode ptq trains the float baseline above
        model = models.build(cfg["model"], ds.input_shape, ds.classes, calibrate=True)
        load_float_weights(model, float_model, "ptq")
        calibrate(model, ds, t["calibration_batches"], t["batch_size"])
        if lead:
            save_checkpoint(ckpt, {"model": model.state_dict(), "epoch": 0, "history": [],
                                   "inputs": training_inputs(cfg)})
        result["epochs"] = []
    else:
        model = models.build(cfg["model"], ds.input_shape, ds.classes)
        if t["init"] == "float":
            assert float_model is not None  # the config asks for the float baseline
            load_float_weights(model, float_model, "train.init")
        result["epochs"] = fit(model, ds, cfg, t["epochs"], "qat", ckpt, resume, shard)
    result["test_accuracy"] = evaluate(model, ds.x_test, ds.y_test)
    if lead:
        log.info("test accuracy %.4f; checkpoint %s", result["test_accuracy"], ckpt)
        write_json(build_dir / "train.json", result)
    return result


def load_trained(build_dir: Path) -> tuple[models.QuantNet, dict[str, Any], datasets.Dataset]:
    """The trained model of a build folder (eval mode), its config and dataset."""
    from flow.train import config as configs

    build_dir = Path(build_dir)
    for f in ("config.yaml", "checkpoint.pt"):
        if not (build_dir / f).is_file():
            raise FileNotFoundError(f"{build_dir / f}: missing (run `qflow train` first)")
    cfg = configs.load(build_dir / "config.yaml")
    ds = datasets.load(cfg["data"], cfg["seed"])
    calibrated = cfg["train"]["mode"] == "ptq"
    model = models.build(cfg["model"], ds.input_shape, ds.classes, calibrate=calibrated)
    ckpt = build_dir / "checkpoint.pt"
    hint = "train the build again with `qflow train`"
    state = load_checkpoint(ckpt, hint)
    differs = first_difference(state.get("inputs", training_inputs(cfg)), training_inputs(cfg),
                               ignore=EPOCH_KEYS)
    if differs is not None:
        raise ValueError(f"{ckpt}: was trained with a different {differs} than "
                         f"{build_dir / 'config.yaml'}; {hint}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"{ckpt}: does not fit the model of {build_dir / 'config.yaml'} "
                         f"({first_line(e)}); {hint}") from e
    model.eval()
    return model, cfg, ds
