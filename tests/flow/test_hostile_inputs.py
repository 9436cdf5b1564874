"""Hostile and careless inputs to training: configs and datasets (IDX, gzip, npz). Each is
refused with one clear error naming the file (and key, line or sample), before any
training, and none runs code or loses a user's file."""

from __future__ import annotations

import gzip
import math
import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from flow import data
from flow.data import IDX_IMAGES, IDX_LABELS, DataError, load_idx, read_idx
from flow.train import config

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
