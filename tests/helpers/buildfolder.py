"""What a folder holds, to show that a command left it as it was."""

from __future__ import annotations

from pathlib import Path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def hidden(folder: Path) -> list[str]:
    """The names in `folder` starting with a dot (staging, lock and old folders)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
