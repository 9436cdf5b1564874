"""A backend registers in one place, flow.backends.registry: `qflow run`'s targets, export's
generators, `qflow check`'s checks, the report's agreement matrix and sections and the
qflow command's subcommands all follow its records, a fake backend's included."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow import backends, buildfolder, check, golden
from flow.backends import registry
from flow.backends.registry import Backend, Check, Section, Stage, Target
from flow.cli import parser, plugins
from flow.ir import Model, load
from flow.report import report, sections
from flow.report.summary import executions
from flow.results import write_result
from flow.synthetic import random_codes, random_model


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def run_choices() -> list[str]:
    (action,) = [a for a in subcommands(parser())["run"]._actions if a.dest == "backend"]
    return list(action.choices or ())


def test_the_registry_declares_what_the_flow_had() -> None:
    """Every name, result file, key and report text as before the registry."""
    assert {name: (b.module, dict(t.options)) for name, (b, t) in registry.targets().items()} \
        == {"golden": ("flow.backends.golden", {}), "rtl": ("flow.backends.rtl", {}),
            "hls": ("flow.backends.hls", {}),
            "firmware": ("flow.backends.firmware", {"target": "host"}),
            "firmware-rv32": ("flow.backends.firmware", {"target": "rv32"})}
    assert backends.names() == run_choices() == list(registry.targets())
    assert backends.available_generators() == ["rtl", "hls", "firmware"]
    assert [(c.name, b.name, c.module, c.function) for b, c in registry.checked()] == [
        ("sim", "rtl", "flow.backends.rtl", "check"),
        ("hls", "hls", "flow.backends.hls", "hls_check"),
        ("firmware", "firmware", "flow.backends.firmware.cli", "firmware_check")]
    assert executions() == [
        ("RTL, cocotb + Verilator", "sim.json", "rtl", "sim"),
        ("HLS C simulation", "hls.json", "hls", "hls"),
        ("firmware, host (ASan/UBSan)", "firmware.json", "host", "firmware"),
        ("firmware, RV32IMC under QEMU", "firmware.json", "rv32", "firmware")]
    assert [(s.file, s.title, s.command) for s in sections()] == [
        ("verify.json", "Verification: agreement with the golden model", "qflow verify {dir}"),
        ("sim.json", "RTL simulation", "qflow sim {dir}"),
        ("synth.json", "Synthesis", "qflow synth {dir}"),
        ("hls.json", "HLS C++", "qflow hls {dir}"),
        ("firmware.json", "Firmware", "qflow firmware {dir}")]
    assert plugins() == ["flow.backends.rtl", "flow.synth", "flow.board", "flow.backends.hls",
                         "flow.backends.firmware", "flow.report"]


@pytest.mark.parametrize("backend", registry.BACKENDS, ids=lambda b: b.name)
def test_every_backend_appears_from_its_record(backend: Backend) -> None:
    names = [t.name for t in backend.targets]
    assert [n for n in backends.names() if n in names] == names
    assert [n for n in run_choices() if n in names] == names
    assert (backend.name in backends.available_generators()) == backend.generated
    assert [m for m in plugins() if m in backend.cli_modules] == list(backend.cli_modules)
    all_sections = sections()
    assert [s for s in all_sections if s in backend.sections] == list(backend.sections)
    rows = [r for r in executions() if r[0] in {t.execution for t in backend.targets}]
    if backend.check is None:
        assert rows == [] and (backend, None) not in registry.checked()
        return
    c = backend.check
    assert (backend, c) in registry.checked()
    assert rows == [(t.execution, c.result, t.key, c.name) for t in backend.targets]
    assert Section(c.result, c.title, f"qflow {c.name} {{dir}}") in all_sections


def test_a_checked_target_needs_its_key_and_row() -> None:
    with pytest.raises(ValueError, match="backend half: a checked target needs its result key"):
        Backend("half", "m", (Target("half"),), generated=False, check=Check("h", "m", "f", "H"))


# ---- a fake backend, registered by one record --------------------------------------------

FAKE_MODULE, FAKE_STAGE = "qflow_fake_backend", "qflow_fake_stage"
FAKE = Backend(
    "fake", FAKE_MODULE,
    (Target("fake", {"mode": "a"}, key="a", execution="fake, mode a"),
     Target("fake-b", {"mode": "b"}, key="b", execution="fake, mode b")),
    generated=True, cli=True, check=Check("fake", FAKE_MODULE, "fake_check", "Fake backend"),
    stages=(Stage(FAKE_STAGE, Section("fake_synth.json", "Fake synthesis",
                                      "qflow fake-synth {dir}")),))


def subcommand(name: str) -> Callable[[argparse._SubParsersAction], None]:
    def register_cli(sub: argparse._SubParsersAction) -> None:
        sub.add_parser(name).add_argument("build_dir")
    return register_cli


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """FAKE added to the registry (its modules in sys.modules); what its run was given."""
    seen: dict[str, Any] = {}

    def run(model: Model, build_dir: Path, codes: np.ndarray, **options: str) -> np.ndarray:
        seen["options"] = options
        return golden.run_codes(model, codes)

    def fake_check(build_dir: Path, inputs: str | None, limit: int | None) -> None:
        write_result(build_dir, "fake", load(build_dir), {
            "samples": 4, "agreement": {"a": {"equal": 4, "total": 4}},
            "skipped": {"b": "no fake emulator"}}, limit is None)

    module = types.ModuleType(FAKE_MODULE)
    module.__dict__.update(LAYER_KINDS=golden.OPS, ACTIVATIONS=("thresholds", "requant", "none"),
                           run=run, fake_check=fake_check, register_cli=subcommand("fake"))
    stage = types.ModuleType(FAKE_STAGE)
    stage.__dict__.update(register_cli=subcommand("fake-synth"))
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    monkeypatch.setitem(sys.modules, FAKE_STAGE, stage)
    monkeypatch.setattr(registry, "BACKENDS", (*registry.BACKENDS, FAKE))
    return seen


@pytest.fixture
def model_build(tmp_path: Path) -> tuple[Model, Path]:
    model = random_model([12, 8, 4], ["INT2", "BIPOLAR"], ["BIPOLAR"], input_type="UINT4", seed=1)
    build = tmp_path / "b"
    model.save(build)
    buildfolder.mark(build)
    return model, build


def test_a_fake_backend_runs_generates_and_has_commands(
        fake: dict[str, Any], model_build: tuple[Model, Path]) -> None:
    model, build = model_build
    assert backends.names()[-2:] == run_choices()[-2:] == ["fake", "fake-b"]
    assert backends.available_generators()[-1] == "fake"
    assert {"fake", "fake-synth"} <= set(subcommands(parser()))
    codes = random_codes(model, 4)
    assert np.array_equal(backends.run("fake-b", model, build, codes), golden.run_codes(model, codes))
    assert fake["options"] == {"mode": "b"}


def test_a_fake_backend_is_checked_and_reported(
        fake: dict[str, Any], model_build: tuple[Model, Path], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    _, build = model_build
    ran: list[str] = []
    for _, c in registry.checked():
        if c.name != "fake":  # the real checks only say they ran
            monkeypatch.setattr(importlib.import_module(c.module), c.function,
                                lambda *a, name=c.name: ran.append(name))
    monkeypatch.setattr("flow.verify.verify", lambda *a: {"all_equal": True, "passed": True})
    outcome = check.check_build(build)
    assert ran == ["sim", "hls", "firmware"] and outcome["fake"]["status"] == "equal"
    assert json.loads((build / "check.json").read_text())["checks"]["fake"]["status"] == "equal"
    text = report(build).read_text()
    assert "| fake, mode a | 4 / 4 | equal |" in text
    assert "| fake, mode b | skipped | no fake emulator |" in text
    assert "## Fake backend\n\nFrom `fake.json`." in text
    assert "## Fake synthesis\n\n*Not available: needs fake_synth.json (missing); run " \
           f"`qflow fake-synth {build}`.*" in text
    assert text.index("## Firmware") < text.index("## Fake backend") < text.index("## Fake synthesis")
