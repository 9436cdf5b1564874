"""Figures for reports: matplotlib on the Agg backend (no display), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flow.atomic import write_with


def figure(ncols: int = 1, width: float = 6.4) -> tuple[Any, list[Any]]:
    """A matplotlib figure (Agg backend: no display needed) and its row of axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 4.2), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_with(Path(path), lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return Path(path)
