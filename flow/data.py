"""Datasets: scikit-learn's 8x8 digits (the embedded default), any MNIST-format IDX folder
(grey N x H x W images, or N x H x W x C in a 4-dimension IDX file), and a .npz of images
with channels (`x`: uint8 N x H x W x C, `y`: labels), e.g. CIFAR-10 saved by a user.

Images come out as float32 [N, C, H, W] in [0, 1], labels as int64 [N]. Splits are fixed
by a seed, so every stage of one build sees the same test set.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_IMAGES = 0x00000803  # ubyte, 3 dims (N, H, W)
IDX_COLOR_IMAGES = 0x00000804  # ubyte, 4 dims (N, H, W, C)
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


MAX_IDX_BYTES = 1 << 32  # 4 GiB of uint8 images (16 GiB once float32): more is a lie or a bomb
READ_CHUNK = 1 << 24


def _read_up_to(f: io.BufferedIOBase, limit: int) -> bytes:
    """At most `limit` bytes, in chunks: a header's claimed size is never allocated at once,
    and a gzip bomb is never decompressed past it."""
    parts, got = [], 0
    while got < limit and (chunk := f.read(min(READ_CHUNK, limit - got))):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file (optionally .gz); checks magic, dimensions and length. Images are
    N x H x W (magic 0x803) or N x H x W x C (0x804)."""
    images = magic == IDX_IMAGES
    kind = "images (magic 0x803 or 0x804)" if images else "labels (magic 0x801)"
    gz = path.suffix == ".gz"
    try:
        with gzip.open(path, "rb") if gz else path.open("rb") as f:
            head = _read_up_to(f, 4)
            found = struct.unpack(">I", head)[0] if len(head) == 4 else 0
            if found not in ((IDX_IMAGES, IDX_COLOR_IMAGES) if images else (magic,)):
                raise DataError(f"{path}: not an IDX {kind} file")
            ndim = found & 0xFF
            raw_dims = _read_up_to(f, 4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            n = math.prod(dims)
            if n > MAX_IDX_BYTES:
                raise DataError(f"{path}: IDX header says {dims} ({n} bytes); more than the "
                                f"{MAX_IDX_BYTES} bytes a dataset may hold here")
            data = _read_up_to(f, n + 1)
    except OSError as e:
        what = "not a valid gzip file" if gz else "cannot read"
        raise DataError(f"{path}: {what} ({e.strerror or e})") from e
    except (EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from e
    if len(data) != n:
        raise DataError(f"{path}: IDX header says {dims} ({n} bytes) but the file holds "
                        f"{'more' if len(data) > n else len(data)} bytes of data")
    if 0 in dims[1:]:
        raise DataError(f"{path}: IDX header says {dims}; an image has no empty dimension")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def channels_first(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W (grey) or N x H x W x C -> float32 N x C x H x W in [0, 1]."""
    x = images[..., None] if images.ndim == 3 else images
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def load_npz(path: Path, seed: int = 0) -> Dataset:
    """A .npz holding `x` (uint8 N x H x W x C, or N x H x W) and `y` (integer labels
    0..K-1): seeded 70/10/20 train/validation/test split."""
    path = Path(path)
    if path.exists() and not path.is_file():  # np.load would wait forever on a FIFO
        raise DataError(f"{path}: not a file (expected a .npz of arrays x and y)")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: holds one array (a .npy), not a .npz of x (images) and y "
                            "(labels); save one with numpy.savez(path, x=images, y=labels)")
        with archive:
            if "x" not in archive.files or "y" not in archive.files:
                raise DataError(f"{path}: expected arrays 'x' (images) and 'y' (labels); "
                                f"found {', '.join(archive.files) or 'none'}")
            images, labels = archive["x"], archive["y"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, MemoryError) as e:
        raise DataError(f"{path}: cannot read a .npz file ({e})") from e
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or 0 in images.shape[1:]:
        raise DataError(f"{path}: x is {images.dtype} {images.shape}; expected uint8 "
                        "N x H x W x C (or N x H x W) images")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: y is {labels.dtype} {labels.shape}; expected one integer "
                        "label per image (not one-hot)")
    if len(labels) != len(images):
        raise DataError(f"{path}: x holds {len(images)} images but y {len(labels)} labels")
    if len(images) < 5:
        raise DataError(f"{path}: {len(images)} samples; at least 5 are needed to split")
    if labels.dtype == np.uint64 and labels.max() > np.iinfo(np.int64).max:
        i = int(labels.argmax())
        raise DataError(f"{path}: y: sample {i} has label {labels[i]}; labels must be 0..K-1")
    y = labels.astype(np.int64)
    classes = _check_labels(y, y, {"train": path, "t10k": path})
    (xtr, ytr), (xva, yva), (xte, yte) = _split(channels_first(images), y, (0.7, 0.1), seed)
    return Dataset(path.stem, xtr, ytr, xva, yva, xte, yte, classes=classes)


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
    """Class labels run 0..K-1 with K >= 2, every class present in training (a stray label
    such as 200 would otherwise make a 201-class model); the test labels are among them."""
    for split, labels in (("train", train), ("t10k", test)):
        negative = np.flatnonzero(labels < 0)
        if len(negative):
            i = int(negative[0])
            raise DataError(f"{files[split]}: sample {i} has label {labels[i]}; labels must be "
                            "0..K-1")
    present = np.unique(train)
    classes = len(present)
    if classes < 2:
        raise DataError(f"{files['train']}: every sample has label {present[0]}; a classifier "
                        "needs at least two classes")
    if present[-1] != classes - 1:
        gap = int(np.flatnonzero(present != np.arange(classes))[0])
        stray = int(present[-1])
        i = int(np.flatnonzero(train == stray)[0])
        raise DataError(f"{files['train']}: labels must be 0..K-1 with every class present; "
                        f"class {gap} has no sample while sample {i} has label {stray}")
    bad = np.flatnonzero(test >= classes)
    if len(bad):
        raise DataError(f"{files['t10k']}: sample {bad[0]} has label {test[bad[0]]}, outside "
                        f"the training labels 0..{classes - 1}")
    return classes


def _shape(chw: tuple[int, ...]) -> str:
    """C x H x W as a person says it: 28x28 (grey) or 32x32x3."""
    c, h, w = chw
    return f"{h}x{w}" + (f"x{c}" if c > 1 else "")


def load_idx(folder: Path, name: str = "idx", seed: int = 0, val_fraction: float = 0.1) -> Dataset:
    """An MNIST-format folder: train split into train/validation (seeded), t10k as test."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (expected an MNIST-format IDX folder)")
    parts = {}
    image_files, label_files = {}, {}
    for split in ("train", "t10k"):
        image_files[split] = _find(folder, f"{split}-images-idx3-ubyte")
        imgs = read_idx(image_files[split], IDX_IMAGES)
        label_files[split] = _find(folder, f"{split}-labels-idx1-ubyte")
        labels = read_idx(label_files[split], IDX_LABELS)
        if len(imgs) != len(labels):
            raise DataError(f"{folder}: {split} has {len(imgs)} images but {len(labels)} labels")
        if len(imgs) == 0:
            raise DataError(f"{label_files[split]}: no samples")
        parts[split] = (channels_first(imgs), labels.astype(np.int64))
    train_shape, test_shape = (parts[s][0].shape[1:] for s in ("train", "t10k"))
    if train_shape != test_shape:  # else training succeeds and testing fails
        raise DataError(f"{image_files['t10k']}: images are {_shape(test_shape)} but the "
                        f"training images ({image_files['train']}) are {_shape(train_shape)}; "
                        "a model takes one image size")
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
    if name == "npz":
        if "path" not in spec:
            raise DataError("data: name 'npz' needs a 'path' to a .npz file (x, y)")
        return load_npz(Path(spec["path"]), seed)
    raise DataError(f"data: unknown dataset {name!r} (expected digits, fashion-mnist, idx or "
                    "npz)")
