"""qflow as an installed package: the wheel carries rtl/, hls/ and firmware/ as package data,
and an installed qflow, from another directory, generates every backend, runs the HLS and
firmware ones and writes the report; no module downstream of export imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from tests.conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "flow", "rtl", "hls", "firmware")

# Run in a child: torch (and Brevitas) cannot be imported there.
NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "brevitas"):
            raise ImportError(f"{name} is blocked: nothing after export may import it")
sys.meta_path.insert(0, NoTorch())
"""


def test_every_package_is_listed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "flow").rglob("__init__.py")}
    assert found <= listed, f"pyproject.toml does not list {sorted(found - listed)}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources, installed into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(
            ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (ROOT / name).is_dir() else {}))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", str(src), "-w",
                    str(tmp / "dist")], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("qflow-*.whl")
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def run_installed(site: Path, code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run([sys.executable, "-c", NO_TORCH + code], cwd=cwd, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_installed_wheel_generates_and_runs_without_torch(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = run_installed(installed, """
from pathlib import Path
import numpy as np
import flow, flow.report, flow.synth
from flow import backends, golden
from flow.cli import parser
from flow.resources import source_dir
from flow.synthetic import random_codes, random_model

for tree in ("rtl", "hls", "firmware"):
    assert str(source_dir(tree)).startswith(str(Path(flow.__file__).parent)), source_dir(tree)
parser()  # every stage's subcommands register without torch
m = random_model([12, 8, 4], ["INT2", "BIPOLAR"], ["BIPOLAR"], input_type="UINT4", seed=1)
m.save(Path("b"))
flow.buildfolder.mark(Path("b"))
flow.report.report(Path("b"))  # its cost section reads the IR only
codes = random_codes(m, 8)
ref = golden.run_codes(m, codes)
for name in ("rtl", "hls", "firmware"):
    backends.get(name).generate(m, Path("b"))
for name in ("hls", "firmware"):
    assert np.array_equal(backends.run(name, m, Path("b"), codes), ref), name
print("installed:", Path(flow.__file__).parent)
""", work)
    assert str(installed) in out
    assert {p.name for p in (work / "b").iterdir()} >= {"ir.json", "rtl", "hls", "firmware"}
    assert "cost" in json.loads((work / "b" / "analysis.json").read_text())
