"""Dataset loaders: the digits split and the IDX reader, including malformed files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from flow.data import FASHION_MNIST_DIR, DataError, load, load_digits, load_idx, read_idx
from tests.helpers.data import write_idx


def test_digits_split_is_seeded_and_disjoint() -> None:
    a, b = load_digits(0), load_digits(0)
    assert np.array_equal(a.x_test, b.x_test)
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert a.input_shape == (1, 8, 8) and a.x_train.max() <= 1.0
    assert not np.array_equal(load_digits(1).y_test, a.y_test)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder(tmp_path: Path, gz: bool) -> None:
    write_idx(tmp_path, "train", 50, gz)
    write_idx(tmp_path, "t10k", 20, gz, seed=1)
    ds = load_idx(tmp_path)
    assert ds.input_shape == (1, 5, 7)
    assert len(ds.x_train) + len(ds.x_val) == 50 and len(ds.x_test) == 20
    assert ds.classes == 4 and ds.x_test.dtype == np.float32


def test_idx_missing_folder_names_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        load({"name": "idx", "path": str(tmp_path / "nowhere")})


def test_idx_missing_file_says_what_is_expected(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", 10, False)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_idx(tmp_path)


def test_idx_bad_magic_and_truncation(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(struct.pack(">II", 0x801, 3) + b"\x00\x01\x02")
    with pytest.raises(DataError, match="not an IDX images"):
        read_idx(p, 0x803)
    p.write_bytes(struct.pack(">II", 0x801, 5) + b"\x00\x01")
    with pytest.raises(DataError, match="holds 2 bytes"):
        read_idx(p, 0x801)
    p.write_bytes(b"\x1f\x8b garbage")
    q = tmp_path / "y.gz"
    q.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="gzip"):
        read_idx(q, 0x801)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load({"name": "cifar"})


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_found_by_default() -> None:
    ds = load({"name": "fashion-mnist"})
    assert ds.input_shape == (1, 28, 28) and len(ds.x_test) == 10000 and ds.classes == 10


def test_idx_images_with_channels(tmp_path: Path) -> None:
    """A 4-dimension IDX image file (N x H x W x C, magic 0x804) loads as N x C x H x W."""
    rng = np.random.default_rng(2)
    for split, n in (("train", 20), ("t10k", 6)):
        imgs = rng.integers(0, 256, size=(n, 4, 5, 3), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 3
        (tmp_path / f"{split}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIIII", 0x804, n, 4, 5, 3) + imgs.tobytes())
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x801, n) + labels.tobytes())
    ds = load_idx(tmp_path)
    assert ds.input_shape == (3, 4, 5) and ds.classes == 3
    assert np.array_equal(ds.x_test * 255, imgs.transpose(0, 3, 1, 2).astype(np.float32))


def test_npz_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(50, 6, 6, 3), dtype=np.uint8)
    y = np.arange(50) % 5
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    ds = load({"name": "npz", "path": str(tmp_path / "mine.npz")}, seed=1)
    assert ds.input_shape == (3, 6, 6) and ds.classes == 5 and ds.name == "mine"
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 50
    assert np.array_equal(np.sort(np.concatenate([ds.y_train, ds.y_val, ds.y_test])), np.sort(y))
    np.savez(tmp_path / "bad.npz", images=x, y=y)
    with pytest.raises(DataError, match="bad.npz: expected arrays 'x' \\(images\\) and 'y'"):
        load({"name": "npz", "path": str(tmp_path / "bad.npz")})
    np.savez(tmp_path / "float.npz", x=x.astype(np.float32), y=y)
    with pytest.raises(DataError, match="float.npz: x is float32"):
        load({"name": "npz", "path": str(tmp_path / "float.npz")})
    with pytest.raises(DataError, match="missing.npz: cannot read"):
        load({"name": "npz", "path": str(tmp_path / "missing.npz")})
