"""Dataset files written for the tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(folder: Path, split: str, n: int, gz: bool, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n, 5, 7), dtype=np.uint8)
    labels = rng.integers(0, 4, size=n, dtype=np.uint8)
    for stem, header, arr in ((f"{split}-images-idx3-ubyte", struct.pack(">IIII", 0x803, n, 5, 7),
                               imgs),
                              (f"{split}-labels-idx1-ubyte", struct.pack(">II", 0x801, n), labels)):
        raw = header + arr.tobytes()
        (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
