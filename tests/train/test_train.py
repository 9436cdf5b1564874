"""Training's own pieces: batch augmentation, QAT from the float baseline, and what a
resumed run must share with the one it continues."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from brevitas.nn import QuantConv2d, QuantLinear

from flow.train import config, models
from flow.train.checkpoint import training_inputs
from flow.train.trainer import augment, load_float_weights, trained_from
from tests.conftest import ROOT

CNN = {"arch": "cnn", "convs": [4, "pool", 6], "hidden": [8], "input": {"quant": "uint", "bits": 8},
       "weight": {"quant": "binary"}, "act": {"quant": "binary"}}


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x [C, H, W] moved down by dy and right by dx (negative: up, left), zero fill."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


@pytest.mark.parametrize("shift,flip", [(0, False), (2, False), (0, True), (3, True)])
def test_augment_shifts_and_flips_each_image_on_its_own(shift: int, flip: bool) -> None:
    torch.manual_seed(1)
    x = torch.rand(512, 2, 7, 9)  # not square, two channels: rows, columns and channels differ
    y = augment(x, {"shift": shift, "flip": flip})
    assert y.shape == x.shape and y.is_contiguous()
    seen = set()
    for xi, yi in zip(x, y, strict=True):
        found = [(f, dy, dx) for f in ((False, True) if flip else (False,))
                 for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)
                 if torch.equal(yi, _shifted(xi.flip(-1) if f else xi, dy, dx))]
        assert found, "an image is not a shifted (or mirrored) copy of its input"
        seen.add(found[0])
    # every offset and orientation occurs (not one transform for the whole batch)
    assert len(seen) == (2 * shift + 1) ** 2 * (2 if flip else 1)
    torch.manual_seed(1)
    torch.rand(512, 2, 7, 9)
    assert torch.equal(augment(x, {"shift": shift, "flip": flip}), y)  # the seeded RNG decides


def test_qat_starts_from_the_float_weights() -> None:
    torch.manual_seed(0)
    float_model = models.build(CNN, (1, 10, 10), 3, quantized=False)
    for name, buffer in float_model.named_buffers():
        if name.endswith("running_mean"):
            buffer.normal_()
    binary = models.build(CNN, (1, 10, 10), 3)
    load_float_weights(binary, float_model, "train.init")
    pairs = list(zip((m for m in binary.modules() if isinstance(m, QuantLinear | QuantConv2d)),
                     (m for m in float_model.modules() if isinstance(m, QuantLinear | QuantConv2d)),
                     strict=True))
    assert len(pairs) == 4
    for q, f in pairs:  # the latent weights keep their signs and fill [-1, 1]
        assert torch.equal(torch.sign(q.weight), torch.sign(f.weight))
        assert q.weight.abs().max().item() == pytest.approx(1.0)
    assert torch.equal(binary.state_dict()["features.2.running_mean"],
                       float_model.state_dict()["features.2.running_mean"])
    int2 = models.build({**CNN, "weight": {"quant": "int", "bits": 2}}, (1, 10, 10), 3)
    load_float_weights(int2, float_model, "train.init")
    assert torch.equal(int2.state_dict()["features.1.weight"],
                       float_model.state_dict()["features.1.weight"])


def test_float_weights_that_do_not_line_up_are_an_error() -> None:
    float_model = models.build(CNN, (1, 10, 10), 3, quantized=False)
    dorefa = models.build({**CNN, "grad": {"quant": "dorefa", "bits": 6}}, (1, 10, 10), 3)
    with pytest.raises(ValueError, match="train.init: the float twin's layers do not line up"):
        load_float_weights(dorefa, float_model, "train.init")


def test_init_float_needs_the_float_baseline(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  init: float\n")
    with pytest.raises(config.ConfigError, match="c.yaml:1: train: init: float starts QAT"):
        config.load(path)
    path.write_text("train: {init: float, float_baseline: true, augment: {shift: 2, flip: true}}\n")
    assert config.load(path)["train"]["augment"] == {"shift": 2, "flip": True}


def test_resume_ignores_what_training_does_not_read(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3}}))
    first = config.load(path)
    later = {**first, "train": {**first["train"], "epochs": 9},
             "lower": {"activation": "requant"}, "hardware": {"target_cycles": 64}}
    assert training_inputs(later, epochs=False) == training_inputs(first, epochs=False)
    assert training_inputs(later) != training_inputs(first)
    for key, value in (("model", {**first["model"], "dropout": 0.5}), ("seed", 1),
                       ("train", {**first["train"], "augment": {"shift": 1, "flip": False}})):
        assert training_inputs({**first, key: value}, epochs=False) != training_inputs(first)


def test_a_build_is_trained_from_a_config_with_its_training_inputs(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 3}}))
    cfg = config.load(path)
    build = tmp_path / "b"
    build.mkdir()
    (build / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert not trained_from(build, cfg)  # no train.json: not finished
    (build / "train.json").write_text("{}")
    assert trained_from(build, cfg)
    assert trained_from(build, {**cfg, "hardware": {"target_cycles": 64}})
    assert not trained_from(build, {**cfg, "train": {**cfg["train"], "epochs": 4}})
    (build / "config.yaml").write_text("model: {hiddden: [16]}\n")  # an older schema's key
    assert not trained_from(build, cfg)


def test_train_starts_qat_from_its_float_baseline(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from flow.train.trainer import train

    cfg = yaml.safe_load((ROOT / "configs" / "digits_w1a1.yaml").read_text())
    cfg["model"]["hidden"] = [32]
    cfg["train"].update({"epochs": 1, "float_epochs": 3, "float_baseline": True,
                         "init": "float", "augment": {"shift": 1, "flip": False}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with caplog.at_level("INFO", logger="qflow.train"):
        result = train(path, tmp_path / "b")
    assert "train.init: float weights loaded" in caplog.text
    # one QAT epoch from the float weights is far above chance (a random start is not)
    assert result["epochs"][0]["val_accuracy"] > 0.5
    assert trained_from(tmp_path / "b", config.load(path))
