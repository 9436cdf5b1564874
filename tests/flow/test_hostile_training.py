"""Hostile and careless checkpoints and the commands that train or read them (train
--resume, export, sweep, explore): a planted pickle never runs, a truncated, foreign or
half-written checkpoint is named before any training, a checkpoint is written whole or not
at all, and explore refuses a config it cannot explore."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flow.buildfolder import mark
from flow.cli import main
from flow.train import config
from tests.conftest import ROOT


def _digits_config(folder: Path, name: str = "digits_w1a1", **changes: object) -> Path:
    """The default config, tiny: hidden [16], 1 epoch; `changes` are sections or train keys."""
    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["name"] = name
    cfg["model"]["hidden"] = [16]
    cfg["train"].update(epochs=1, float_baseline=False)
    cfg["hardware"] = {"target_cycles": 64}
    for key, value in changes.items():
        (cfg if key in config.Config.model_fields else cfg["train"])[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Planted:
    """A pickle that, unpickled, creates `marker` (a stand-in for os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 0, "history": [],
                "payload": Planted(marker)}, path)


def test_planted_pickle_is_refused_and_never_runs(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    cfg_path = _digits_config(tmp_path)
    build = tmp_path / "build"
    build.mkdir()
    mark(build)  # a build in every other way: only the checkpoint is hostile
    (build / "config.yaml").write_text(yaml.safe_dump(config.load(cfg_path)))
    _plant(build / "checkpoint.pt", marker)
    assert main(["export", str(build)]) == 2  # load_trained
    partial = tmp_path / ".build.partial"  # train --resume
    partial.mkdir()
    mark(partial)
    (partial / "config.yaml").write_text((build / "config.yaml").read_text())
    _plant(partial / "checkpoint.pt", marker)
    assert main(["train", str(cfg_path), "--out", str(build), "--resume"]) == 2
    sweep_out = tmp_path / "sweep"  # sweep's float checkpoint
    _plant(sweep_out / "float_checkpoint.pt", marker)
    mark(sweep_out)
    assert main(["sweep", str(cfg_path), "--out", str(sweep_out), "--bits", "1", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    for line, ckpt in zip(err, (build / "checkpoint.pt", partial / "checkpoint.pt",
                                sweep_out / "float_checkpoint.pt"), strict=True):
        assert line.startswith(f"qflow: error: {ckpt}: refused: holds more than tensors")
    assert not marker.exists()


def test_what_qflow_saves_loads_as_weights_only(tmp_path: Path) -> None:
    """Checkpoints hold tensors, numbers, strings and containers only, and record the
    training inputs they were trained from (float baseline, QAT, PTQ)."""
    from flow.train.checkpoint import training_inputs
    from flow.train.trainer import train

    for mode in ("qat", "ptq"):
        path = _digits_config(tmp_path, name=f"d_{mode}", mode=mode, float_baseline=True)
        train(path, tmp_path / mode)
        for ckpt in ("checkpoint.pt", "float_checkpoint.pt"):
            state = torch.load(tmp_path / mode / ckpt, weights_only=True)
            assert state["inputs"] == training_inputs(config.load(path))


def test_truncated_checkpoint_is_named_before_training(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from flow.train import trainer as training

    cfg_path = _digits_config(tmp_path, float_baseline=True)
    partial = tmp_path / ".b.partial"
    partial.mkdir()
    mark(partial)
    (partial / "config.yaml").write_text(yaml.safe_dump(config.load(cfg_path)))
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(1000)}, "epoch": 1}, buf)
    (partial / "checkpoint.pt").write_bytes(buf.getvalue()[:2000])  # the disk filled up

    def no_training(*args: object, **kw: object) -> None:
        raise AssertionError("trained before the checkpoint was checked")

    monkeypatch.setattr(training, "fit", no_training)
    assert main(["train", str(cfg_path), "--out", str(tmp_path / "b"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"qflow: error: {partial / 'checkpoint.pt'}: unreadable checkpoint, "
                          "truncated or corrupt (PytorchStreamReader")
    assert err.endswith("delete it, or train without --resume, to start over")


def test_checkpoint_written_whole_or_not_at_all(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from flow.train.checkpoint import save_checkpoint

    ckpt = tmp_path / "checkpoint.pt"
    save_checkpoint(ckpt, {"model": {"w": torch.ones(3)}, "epoch": 1})
    before = ckpt.read_bytes()
    real_save = torch.save

    def full_disk(obj: object, f: Path) -> None:  # a short write that reports no error
        real_save(obj, f)
        Path(f).write_bytes(Path(f).read_bytes()[:100])

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(RuntimeError, match=f"{ckpt}: the checkpoint written does not read back"):
        save_checkpoint(ckpt, {"model": {"w": torch.zeros(3)}, "epoch": 2})
    assert ckpt.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [ckpt.name]
    monkeypatch.setattr(torch, "save", real_save)
    with pytest.raises(RuntimeError, match="does not read back"):  # not weights only
        save_checkpoint(ckpt, {"model": {}, "rng": np.random.get_state()})
    assert ckpt.read_bytes() == before


def test_ptq_checkpoint_is_written_atomically(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from flow.train.trainer import _train

    cfg = config.load(_digits_config(tmp_path, mode="ptq"))
    (tmp_path / "checkpoint.pt").write_bytes(b"the previous checkpoint")
    real_save = torch.save

    def full_disk(obj: object, f: Path) -> None:
        if "checkpoint.pt" in Path(f).name and "float" not in Path(f).name:
            Path(f).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _train(cfg, tmp_path, resume=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"the previous checkpoint"


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path: Path) -> None:
    from flow.train.checkpoint import save_checkpoint, training_inputs
    from flow.train.trainer import train

    cfg_path = _digits_config(tmp_path)
    cfg = config.load(cfg_path)
    partial = tmp_path / ".b.partial"
    partial.mkdir()
    mark(partial)
    (partial / "config.yaml").write_text(yaml.safe_dump(cfg))
    other = config.load(_digits_config(tmp_path, name="other", model={"hidden": [8]}))
    base = {"model": {}, "optimizer": {}, "scheduler": {}, "rng": torch.get_rng_state(),
            "history": [], "epoch": 1}
    save_checkpoint(partial / "checkpoint.pt", {**base, "inputs": training_inputs(other)})
    with pytest.raises(ValueError, match=r"checkpoint.pt: was trained with a different "
                                         r"model.hidden than this config; delete it"):
        train(cfg_path, tmp_path / "b", resume=True)
    # from before checkpoints recorded their inputs: its layers do not fit
    save_checkpoint(partial / "checkpoint.pt", {**base, "model": {"extra.weight": torch.ones(1)}})
    with pytest.raises(ValueError, match=r"checkpoint.pt: does not fit this config's model "
                                         r"and training \(Missing key\(s\) in state_dict"):
        train(cfg_path, tmp_path / "b", resume=True)
    save_checkpoint(partial / "checkpoint.pt", {"model": {}, "epoch": "one"})
    with pytest.raises(ValueError, match="checkpoint.pt: not a checkpoint to resume from"):
        train(cfg_path, tmp_path / "b", resume=True)


def test_sweep_reuses_only_the_same_trainings_float_model(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    """seed 7 must not reuse seed 0's float model: it trained on seed 7's test split."""
    from flow.report.sweep import sweep
    from flow.train.trainer import train

    build = tmp_path / "build"
    train(_digits_config(tmp_path, float_baseline=True), build)
    before = (build / "float_checkpoint.pt").read_bytes()
    seed7 = _digits_config(tmp_path / "..", name="digits_w1a1", seed=7, float_baseline=True)
    result = sweep(seed7, build, [1], quick=True)
    assert not result["float"]["reused_checkpoint"] and result["float"]["checkpoint"] is None
    assert "float_checkpoint.pt was trained with a different seed" in caplog.text
    assert result["qat"] is None  # the build's QAT result is seed 0's too
    assert (build / "float_checkpoint.pt").read_bytes() == before  # left as it was
    same = sweep(_digits_config(tmp_path, float_baseline=True), build, [1], quick=True)
    assert same["float"]["reused_checkpoint"] and same["qat"] is not None


def test_explore_without_an_explore_section(tmp_path: Path) -> None:
    from flow.report.explore import explore

    with pytest.raises(config.ConfigError, match=r"digits_w1a1.yaml: no explore: section .*"
                                                 r"configs/digits_explore.yaml"):
        explore(_digits_config(tmp_path), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    long = _digits_config(tmp_path, name="n" * 98, explore={"weight_bits": [1],
                                                           "act_bits": [1]})
    with pytest.raises(config.ConfigError, match=r"name: 'n{98}_w1a1' names the build folder"):
        explore(long, tmp_path / "out")


def test_export_refuses_a_checkpoint_that_is_not_the_builds(tmp_path: Path) -> None:
    from flow.train.checkpoint import save_checkpoint, training_inputs
    from flow.train.trainer import load_trained

    build = tmp_path / "build"
    build.mkdir()
    cfg = config.load(_digits_config(tmp_path))
    (build / "config.yaml").write_text(yaml.safe_dump(cfg))
    seed7 = {**cfg, "seed": 7}  # a checkpoint copied in from another build
    save_checkpoint(build / "checkpoint.pt", {"model": {}, "inputs": training_inputs(seed7)})
    with pytest.raises(ValueError, match=r"checkpoint.pt: was trained with a different seed "
                                         r"than .*config.yaml; train the build again"):
        load_trained(build)
    (build / "checkpoint.pt").unlink()
    (build / "checkpoint.pt").mkdir()
    with pytest.raises(FileNotFoundError, match="checkpoint.pt: missing"):
        load_trained(build)
