"""Datasets: scikit-learn's 8x8 digits (the embedded default) and any MNIST-format IDX folder.

Images come out as float32 [N, 1, H, W] in [0, 1], labels as int64 [N]. Splits are fixed
by a seed, so every stage of one build sees the same test set.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_IMAGES = 0x00000803  # ubyte, 3 dims
IDX_LABELS = 0x00000801  # ubyte, 1 dim


class DataError(ValueError):
    """A missing or malformed dataset; the message names the path and what was expected."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _split(x: np.ndarray, y: np.ndarray, fractions: tuple[float, ...], seed: int
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded shuffle, then cut into len(fractions) + 1 parts."""
    idx = np.random.default_rng(seed).permutation(len(x))
    cuts = np.cumsum([int(round(f * len(x))) for f in fractions])
    return [(x[p], y[p]) for p in np.split(idx, cuts)]


def load_digits(seed: int = 0) -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    (xtr, ytr), (xva, yva), (xte, yte) = _split(x, y, (0.6, 0.2), seed)
    return Dataset("digits", xtr, ytr, xva, yva, xte, yte, classes=10)


def _open(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a valid gzip file ({e})") from e
    return raw


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file (optionally .gz); checks magic, dimensions and length."""
    data = _open(path)
    kind = "images (magic 0x803)" if magic == IDX_IMAGES else "labels (magic 0x801)"
    if len(data) < 4 or struct.unpack(">I", data[:4])[0] != magic:
        raise DataError(f"{path}: not an IDX {kind} file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    n = int(np.prod(dims))
    if len(data) != header + n:
        raise DataError(f"{path}: IDX header says {dims} ({n} bytes) but the file holds "
                        f"{len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    # MNIST ships "train-images-idx3-ubyte", some mirrors "train-images.idx3-ubyte"
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = folder / f"{name}{suffix}"
            if p.is_file():
                return p
    raise DataError(f"{folder}: no {stem}[.gz] (an MNIST-format IDX folder holds "
                    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                    "t10k-labels-idx1-ubyte, optionally gzipped)")


def _check_labels(train: np.ndarray, test: np.ndarray, files: dict[str, Path]) -> int:
    """Class labels run 0..K-1, every class present in training (a stray label such as
    200 would otherwise make a 201-class model); the test labels are among them."""
    present = np.unique(train)
    classes = len(present)
    if present[-1] != classes - 1:
        gap = int(np.setdiff1d(np.arange(present[-1] + 1), present)[0])
        stray = int(present[-1])
        i = int(np.flatnonzero(train == stray)[0])
        raise DataError(f"{files['train']}: labels must be 0..K-1 with every class present; "
                        f"class {gap} has no sample while sample {i} has label {stray}")
    bad = np.flatnonzero(test >= classes)
    if len(bad):
        raise DataError(f"{files['t10k']}: sample {bad[0]} has label {test[bad[0]]}, outside "
                        f"the training labels 0..{classes - 1}")
    return classes


def load_idx(folder: Path, name: str = "idx", seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """An MNIST-format folder: train split into train/validation (seeded), t10k as test."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected an MNIST-format IDX folder)")
    parts = {}
    label_files = {}
    for split in ("train", "t10k"):
        imgs = read_idx(_find(folder, f"{split}-images-idx3-ubyte"), IDX_IMAGES)
        label_files[split] = _find(folder, f"{split}-labels-idx1-ubyte")
        labels = read_idx(label_files[split], IDX_LABELS)
        if len(imgs) != len(labels):
            raise DataError(f"{folder}: {split} has {len(imgs)} images but {len(labels)} labels")
        if len(imgs) == 0:
            raise DataError(f"{label_files[split]}: no samples")
        parts[split] = (imgs.astype(np.float32)[:, None] / 255.0, labels.astype(np.int64))
    classes = _check_labels(parts["train"][1], parts["t10k"][1], label_files)
    (xtr, ytr), (xva, yva) = _split(*parts["train"], (1 - val_fraction,), seed)
    return Dataset(name, xtr, ytr, xva, yva, *parts["t10k"], classes=classes)


def load(spec: dict[str, Any], seed: int = 0) -> Dataset:
    """Dataset from a config's `data` section: {name: digits} | {name: fashion-mnist[, path]}
    | {name: idx, path: FOLDER}."""
    name = spec.get("name", "digits")
    if name == "digits":
        return load_digits(seed)
    if name == "fashion-mnist":
        path = Path(spec.get("path", FASHION_MNIST_DIR))
        if not path.exists():
            raise DataError(f"{path}: Fashion-MNIST not found (install Debian's "
                            "dataset-fashion-mnist, or set data.path to an IDX folder)")
        return load_idx(path, "fashion-mnist", seed)
    if name == "idx":
        if "path" not in spec:
            raise DataError("data: name 'idx' needs a 'path' to an MNIST-format IDX folder")
        return load_idx(Path(spec["path"]), Path(spec["path"]).name, seed)
    raise DataError(f"data: unknown dataset {name!r} (expected digits, fashion-mnist or idx)")
