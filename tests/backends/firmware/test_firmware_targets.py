"""The firmware targets' records (flow/backends/firmware/targets.py): every one complete,
unknown names refused by name, host and rv32 built and run through their records, the
targets without a runner saying why, and the chip's own memory map holding the constants."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest

from flow import golden
from flow.backends import firmware as fw
from flow.backends.firmware.budget import BUDGETS
from flow.backends.firmware.runner import build
from flow.backends.firmware.targets import EXE, INSTALL_HINTS, FirmwareTarget
from flow.backends.firmware.toolchain import constants_in_flash, missing_tools
from tests.helpers.firmware import model_and_codes


def needs_tools(name: str) -> pytest.MarkDecorator:
    missing = missing_tools(name)
    return pytest.mark.skipif(bool(missing), reason="; ".join(missing))


@pytest.mark.parametrize("name", sorted(fw.TARGETS))
def test_every_target_is_complete(name: str) -> None:
    """Every field set as its type says (None only where it may be), every program with an
    install hint, and the fields agreeing with each other."""
    t = fw.TARGETS[name]
    assert t.name == name
    hints = typing.get_type_hints(FirmwareTarget)
    for field in dataclasses.fields(FirmwareTarget):
        value = getattr(t, field.name)
        may_be_none = type(None) in typing.get_args(hints[field.name])
        assert value is not None or may_be_none, f"{name}.{field.name} is unset"
        assert value != "" or field.name == "unsupported", f"{name}.{field.name} is empty"
    assert all(p in INSTALL_HINTS for p in t.tools), t.tools
    assert t.run is None or t.run.count(EXE) == 1
    assert t.run is not None or t.unsupported, "no runner and no reason why"
    if t.instruction_counter:
        assert t.run is not None and "-icount" in t.run and not t.unsupported
    assert t.chip is None or t.chip in BUDGETS
    if t.memory is not None:
        m = t.memory
        assert m.flash + m.flash_size <= m.ram or m.ram + m.ram_size <= m.flash
        assert t.binutils is not None  # the placement of constants is measured


def test_unknown_targets_are_refused_by_name(tmp_path: Path) -> None:
    msg = "unknown firmware target 'esp8266'; choose from host, rv32, esp32c3, lx106"
    with pytest.raises(fw.FirmwareError, match=msg):
        fw.firmware_target("esp8266")
    m, codes = model_and_codes("w8a8", n=2)
    with pytest.raises(fw.FirmwareError, match=msg):
        fw.run(m, tmp_path, codes, target="esp8266")
    with pytest.raises(fw.FirmwareError, match=msg):
        fw.compile_program([], tmp_path / "x", "esp8266", [])
    assert not (tmp_path / "firmware_build").exists()


@pytest.mark.parametrize("name", ["host", pytest.param("rv32", marks=needs_tools("rv32"))])
def test_host_and_rv32_run_through_their_records(tmp_path: Path, name: str) -> None:
    """A record given where a name was: the model built and run by the record's compiler
    and run command equals the golden model; the runner lands in its folder."""
    t = fw.TARGETS[name]
    m, codes = model_and_codes("mixed", n=8)
    np.testing.assert_array_equal(fw.run(m, tmp_path, codes, target=t),
                                  golden.run_codes(m, codes))
    assert (tmp_path / "firmware_build" / name / t.executable).is_file()


@pytest.mark.parametrize(("name", "reason"), [
    ("esp32c3", "flashing is a later step"), ("lx106", "picolibc has no Xtensa semihosting")])
def test_targets_without_a_runner_say_why(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(fw.FirmwareError, match=f"firmware target {name} cannot run programs: "
                                               f".*{reason}"):
        fw.run_program(tmp_path / "runner.elf", name, tmp_path)


@needs_tools("esp32c3")
def test_esp32c3_memory_map_keeps_the_constants_in_flash(tmp_path: Path) -> None:
    """Linked at the chip's own addresses (flash at 0x42000000, DRAM at 0x3FC80000), the
    model's constants all lie in flash."""
    m, _ = model_and_codes("w8a8", n=2)
    t = fw.TARGETS["esp32c3"]
    elf = build(m, tmp_path, t) / t.executable
    placed = constants_in_flash(elf, t)
    assert placed["constant_bytes_in_flash"] > 0 and placed["constants_in_ram"] == []

