"""Hostile and careless inputs: configs, datasets, checkpoints, resume, sweep and explore.
Each is refused with one clear error naming the file (and key, line or sample), before any
training, and none runs code or loses a user's file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from flow import config

BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 9)}]\n"
               for i in range(9))  # 9 lines, 9**9 leaves once expanded


def test_yaml_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    start = time.monotonic()
    with pytest.raises(config.ConfigError, match=r"bomb.yaml:1: YAML anchor or alias \(&l0\)"):
        config.load(path)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize("text,message", [
    ("model: &m {hidden: [16]}\n", "c.yaml:1: YAML anchor or alias (&m)"),
    ("train: {epochs: 2}\nhardware: {target_cycles: 64}\nname: x\nseed: *s\n",
     "c.yaml:4: YAML anchor or alias (*s)"),
    ("train:\n  epochs: 3\n  lr: 0.1\n  epochs: 30\n",
     "c.yaml:4: train.epochs: given twice (first on line 2)"),
    ("name: ..\n", "name: '..' names the build folder"),
    ("name: .hidden\n", "name: '.hidden' names the build folder"),
    ("name: -rf\n", "name: '-rf' names the build folder"),
    (f"name: {'a' * 101}\n", "1 to 100 letters, digits"),
    ("name: café\n", "name: 'café' names the build folder"),
    ("train: {lr: .inf}\n", "c.yaml:1: train.lr: Input should be a finite number"),
    ("hardware: {target_fps: .nan}\n", "hardware.target_fps: Input should be a finite number"),
    ("seed: 4294967296\n", "c.yaml:1: seed: Input should be less than or equal to 4294967295"),
    ("seed: -1\n", "c.yaml:1: seed: Input should be greater than or equal to 0"),
])
def test_config_text_refused_naming_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert message in str(e.value)


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
    assert time.monotonic() - start < 0.5
