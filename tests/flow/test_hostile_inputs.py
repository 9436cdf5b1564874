"""Hostile and careless inputs: configs, datasets, checkpoints, resume, sweep and explore.
Each is refused with one clear error naming the file (and key, line or sample), before any
training, and none runs code or loses a user's file."""

from __future__ import annotations

import errno
import gzip
import io
import math
import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from flow import data
from flow.buildfolder import mark
from flow.cli import main
from flow.data import IDX_IMAGES, IDX_LABELS, DataError, load_idx, read_idx
from flow.train import config
from tests.conftest import ROOT

BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 9)}]\n"
               for i in range(9))  # 9 lines, 9**9 leaves once expanded


def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    start = time.monotonic()
    with pytest.raises(config.ConfigError, match=r"bomb.yaml:1: YAML anchor or alias \(&l0\)"):
        config.load(path)
    # expanded, 9 levels of aliases take minutes and gigabytes: this bound only says it
    # was refused unexpanded, with room for a loaded machine
    assert time.monotonic() - start < 10


def test_config_name_limit_keeps_a_100_character_name(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"name: {'a' * 100}\n")
    assert config.load(path)["name"] == "a" * 100


def test_config_file_name_that_is_no_folder_name(tmp_path: Path) -> None:
    path = tmp_path / "my config.yaml"
    path.write_text("train: {epochs: 1}\n")
    with pytest.raises(config.ConfigError, match="the config file's name unless name: is set"):
        config.load(path)


def test_config_that_is_binary_or_not_utf8(tmp_path: Path) -> None:
    for name, raw, byte in (("png.yaml", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "byte 0 is 0x89"),
                            ("nul.yaml", b"name: a\0b\n", "byte 7 is 0x00"),
                            ("latin1.yaml", "name: caf\xe9\n".encode("latin-1"), "byte 9 is 0xe9")):
        path = tmp_path / name
        path.write_bytes(raw)
        with pytest.raises(config.ConfigError, match=f"{name}: a binary file, not YAML text "
                                                     rf"\({byte}; a config is UTF-8 text\)"):
            config.load(path)


def test_config_that_is_no_regular_file_or_too_big(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    (tmp_path / "folder.yaml").mkdir()
    for path in (fifo, tmp_path / "folder.yaml", Path("/dev/zero")):
        with pytest.raises(config.ConfigError, match=f"{path}: not a regular file"):
            config.load(path)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 10_000)
    with pytest.raises(config.ConfigError, match="big.yaml: 100000 bytes; a config is a YAML"):
        config.load(big)


def test_deeply_nested_config_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("train: " + "[" * 30_000)
    start = time.monotonic()
    with pytest.raises(config.ConfigError, match="deep.yaml: not valid YAML"):
        config.load(path)
    # pure-Python PyYAML took 36 s on this: the bound says it was refused at once, with
    # room for a loaded machine
    assert time.monotonic() - start < 10


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes | None = None,
               gz: bool = False) -> Path:
    raw = struct.pack(f">I{len(dims)}I", magic, *dims) + (
        bytes(math.prod(dims)) if payload is None else payload)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def _idx_folder(folder: Path, test_size: tuple[int, int] = (5, 7)) -> Path:
    """An MNIST-format folder: 30 training and 10 test images of 5x7 (test: test_size)."""
    rng = np.random.default_rng(0)
    for split, n, (h, w) in (("train", 30, (5, 7)), ("t10k", 10, test_size)):
        _write_idx(folder / f"{split}-images-idx3-ubyte", IDX_IMAGES, (n, h, w),
                   rng.integers(0, 256, n * h * w, dtype=np.uint8).tobytes())
        _write_idx(folder / f"{split}-labels-idx1-ubyte", IDX_LABELS, (n,),
                   (np.arange(n) % 3).astype(np.uint8).tobytes())
    return folder


def test_train_and_test_image_sizes_differ(tmp_path: Path) -> None:
    """Found when the data is loaded, not after training ('mat1 and mat2 shapes')."""
    _idx_folder(tmp_path, test_size=(6, 7))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: images are 6x7 but the "
                                        r"training images \(.*train-images-idx3-ubyte\) are 5x7"):
        load_idx(tmp_path)


def test_idx_files_that_lie(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    for dims, payload, message in (
            ((10,), bytes(9), r"header says \(10,\) \(10 bytes\) but the file holds 9 bytes"),
            ((10,), bytes(11), "but the file holds more bytes"),
            ((1 << 31, 3), b"", r"\(6442450944 bytes\); more than the 4294967296 bytes"),
            ((60000, 1000), bytes(8), "60000000 bytes.* but the file holds 8 bytes")):
        _write_idx(labels, IDX_LABELS if len(dims) == 1 else 0x802, dims, payload)
        with pytest.raises(DataError, match=message if len(dims) == 1 else "not an IDX"):
            read_idx(labels, IDX_LABELS)
    for dims, payload, message in (
            ((4, 2000, 2000), bytes(8), r"16000000 bytes\) but the file holds 8 bytes"),
            ((4, 0, 7), b"", r"says \(4, 0, 7\); an image has no empty dimension")):
        images = _write_idx(tmp_path / "images", IDX_IMAGES, dims, payload)
        with pytest.raises(DataError, match=message):
            read_idx(images, IDX_IMAGES)


def test_gzip_that_is_not_or_explodes(tmp_path: Path) -> None:
    fake = tmp_path / "train-labels-idx1-ubyte.gz"
    fake.write_bytes(struct.pack(">II", IDX_LABELS, 3) + bytes(3))  # named .gz, plain inside
    with pytest.raises(DataError, match="labels-idx1-ubyte.gz: not a valid gzip file"):
        read_idx(fake, IDX_LABELS)
    raw = bytearray(gzip.compress(struct.pack(">II", IDX_LABELS, 300) + bytes(range(150)) * 2))
    raw[10] = 0xFF  # damaged deflate stream: block type 3 does not exist
    fake.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="labels-idx1-ubyte.gz: not a valid gzip file"):
        read_idx(fake, IDX_LABELS)
    # 10 labels claimed, 200 MB inflated: read no further than the header says
    bomb = _write_idx(fake, IDX_LABELS, (10,), bytes(200 << 20), gz=True)
    tracemalloc.start()
    with pytest.raises(DataError, match="10 bytes.* but the file holds more bytes"):
        read_idx(bomb, IDX_LABELS)
    assert tracemalloc.get_traced_memory()[1] < 20 << 20
    tracemalloc.stop()


def _npz(path: Path, **arrays: np.ndarray) -> dict[str, str]:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return {"name": "npz", "path": str(path)}


IMAGES = np.random.default_rng(0).integers(0, 256, size=(20, 4, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("arrays,message", [
    ({"x": IMAGES, "y": np.arange(20) % 4 - 1}, r"d.npz: sample 0 has label -1; labels must be"),
    ({"x": IMAGES, "y": np.zeros(20, np.int64)},
     "d.npz: every sample has label 0; a classifier needs at least two classes"),
    ({"x": IMAGES}, r"d.npz: expected arrays 'x' \(images\) and 'y' \(labels\); found x"),
    ({"x": IMAGES, "y": np.arange(19) % 2}, "d.npz: x holds 20 images but y 19 labels"),
    ({"x": np.full((20, 4, 4), np.nan, np.float32), "y": np.arange(20) % 2},
     "d.npz: x is float32 .*; expected uint8"),
    ({"x": IMAGES[:, :, :0], "y": np.arange(20) % 2}, r"d.npz: x is uint8 \(20, 4, 0, 3\)"),
    ({"x": IMAGES, "y": np.eye(2, dtype=np.int64)[np.arange(20) % 2]}, r"\(not one-hot\)"),
    ({"x": IMAGES, "y": np.where(np.arange(20) == 7, 1 << 40, np.arange(20) % 2)},
     "class 2 has no sample while sample 7 has label 1099511627776"),
    ({"x": IMAGES, "y": np.where(np.arange(20) == 3, np.uint64(1 << 63),
                                 np.arange(20, dtype=np.uint64) % 2)},
     "d.npz: y: sample 3 has label 9223372036854775808"),
])
def test_npz_datasets_refused_naming_what(tmp_path: Path, arrays: dict[str, np.ndarray],
                                          message: str) -> None:
    with pytest.raises(DataError, match=message):
        data.load(_npz(tmp_path / "d.npz", **arrays))


def test_npz_path_that_is_a_npy_fifo_or_garbage(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", IMAGES)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    for path, message in ((tmp_path / "d.npy", r"d.npy: holds one array \(a .npy\), not a .npz"),
                          (fifo, "fifo.npz: not a file"),
                          (tmp_path / "junk.npz", "junk.npz: cannot read a .npz file")):
        with pytest.raises(DataError, match=message):
            data.load({"name": "npz", "path": str(path)})


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


def test_frontends_read_qonnx_and_name_what_they_do_not(tmp_path: Path) -> None:
    """A QDQ graph (QuantizeLinear/DequantizeLinear) is refused by name until a frontend
    reads it, as is a float graph without quantizers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from flow import frontends
    from flow.lower import LoweringError

    def save(nodes: list, inits: list, name: str) -> Path:
        g = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              inits)
        path = tmp_path / name
        onnx.save(helper.make_model(g), path)
        return path

    scale = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    qdq = save([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], [scale, zero],
               "qdq.onnx")
    with pytest.raises(LoweringError, match=r"qdq.onnx: a QDQ graph \(QuantizeLinear"):
        frontends.load(qdq)
    plain = save([helper.make_node("Relu", ["x"], ["y"])], [], "float.onnx")
    with pytest.raises(LoweringError, match=r"float.onnx: no Quant/BipolarQuant node"):
        frontends.load(plain)
