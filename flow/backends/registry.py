"""The backends' registry: one record per backend, the only place a backend is declared.

`qflow run` / `verify --backends` (the run targets), `qflow export` / `compile` (the
generated backends), `qflow check` (the checks), the report's agreement matrix and
sections and the qflow command's subcommands all read BACKENDS; adding a backend is adding
a record. Records name modules as strings: reading the registry imports no backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A report section: a result file rendered whole."""

    file: str
    title: str
    command: str  # the command that writes the file; {dir} stands for the build folder


@dataclass(frozen=True)
class Check:
    """A check of `qflow check`: `qflow NAME DIR` runs it alone and writes NAME.json, whose
    result is the check's key in check.json."""

    name: str
    module: str
    function: str  # function(build_dir, inputs, limit) in module; raises when outputs differ
    title: str  # its report section's

    @property
    def result(self) -> str:
        return f"{self.name}.json"

    @property
    def section(self) -> Section:
        return Section(self.result, self.title, f"qflow {self.name} {{dir}}")


@dataclass(frozen=True)
class Target:
    """One way to run a backend: `qflow run --backend NAME`."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)  # keyword options of the module's run
    key: str = ""  # its key in its backend's check result ("agreement", "skipped")
    execution: str = ""  # its row in the report's agreement matrix


@dataclass(frozen=True)
class Stage:
    """A stage reading a backend's files (the RTL's synthesis and boards): its subcommands
    and its report section come after the backend's."""

    module: str  # adds its subcommands with register_cli(subparsers)
    section: Section | None = None


@dataclass(frozen=True)
class Backend:
    """A backend: a module (flow.backends' contract), how it runs, whether `qflow export`
    and `compile` generate it, the check comparing it with the golden model, and the stages
    reading its files."""

    name: str
    module: str
    targets: tuple[Target, ...]
    generated: bool  # by `qflow export` / `qflow compile`, when its module exists
    check: Check | None = None  # None: not checked (the golden model: what checks compare with)
    cli: bool = False  # the module adds subcommands with register_cli(subparsers)
    stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        if self.check and not all(t.key and t.execution for t in self.targets):
            raise ValueError(f"backend {self.name}: a checked target needs its result key "
                             "and its row in the agreement matrix")

    @property
    def cli_modules(self) -> tuple[str, ...]:
        """The modules adding its subcommands and its stages', in order."""
        return ((self.module,) if self.cli else ()) + tuple(s.module for s in self.stages)

    @property
    def sections(self) -> tuple[Section, ...]:
        """Its report sections: its check's, then its stages'."""
        own = (self.check.section,) if self.check else ()
        return own + tuple(s.section for s in self.stages if s.section)


BACKENDS: tuple[Backend, ...] = (
    # runs in-process: the reference
    Backend("golden", "flow.backends.golden", (Target("golden"),), generated=False),
    Backend("rtl", "flow.backends.rtl",
            (Target("rtl", key="rtl", execution="RTL, cocotb + Verilator"),),
            generated=True, cli=True,
            check=Check("sim", "flow.backends.rtl", "check", "RTL simulation"),
            stages=(Stage("flow.synth", Section("synth.json", "Synthesis", "qflow synth {dir}")),
                    Stage("flow.board"))),
    Backend("hls", "flow.backends.hls",
            (Target("hls", key="hls", execution="HLS C simulation"),),
            generated=True, cli=True,
            check=Check("hls", "flow.backends.hls", "hls_check", "HLS C++")),
    # one check, one result file: the host run first, then RV32IMC (skipped without tools)
    Backend("firmware", "flow.backends.firmware",
            (Target("firmware", {"target": "host"}, key="host",
                    execution="firmware, host (ASan/UBSan)"),
             Target("firmware-rv32", {"target": "rv32"}, key="rv32",
                    execution="firmware, RV32IMC under QEMU")),
            generated=True, cli=True,
            check=Check("firmware", "flow.backends.firmware.cli", "firmware_check", "Firmware")),
)


def targets() -> dict[str, tuple[Backend, Target]]:
    """Every run target by name, with its backend, in the registry's order."""
    return {t.name: (b, t) for b in BACKENDS for t in b.targets}


def checked() -> list[tuple[Backend, Check]]:
    """The backends with a check, and their check, in the registry's order."""
    return [(b, b.check) for b in BACKENDS if b.check]
