"""build_dir/hls/: the templates (hls/*.hpp), one parameter header per layer, the dataflow
top, a self-checking C-simulation testbench with a few golden samples (hls/templates/tb.cpp)
and `run_hls.tcl` (hls/templates/run_hls.tcl: csim, csynth, IP export).

The folder is written atomically and stamped with flow.fingerprint (the IR and the
hand-written sources it came from); `current` regenerates it when the stamp does not match.
"""

from __future__ import annotations

import re
from pathlib import Path

from flow import golden, synthetic
from flow.atomic import replace_dir
from flow.backends.hls.cpp import c_identifier
from flow.backends.hls.ops import stages
from flow.backends.hls.top import top_sources
from flow.fingerprint import is_current, python_sources, write_stamp
from flow.ir import Model
from flow.resources import fill_template, source_dir

DEFAULT_PART = "xc7z020clg400-1"
DEFAULT_CLOCK_NS = 10.0
TB_SAMPLES = 16  # golden samples the generated testbench checks by itself in csim


def template_dir() -> Path:
    """hls/: the C++ headers copied into every build, and templates/ for generated files."""
    return source_dir("hls")


def headers() -> list[Path]:
    return sorted(template_dir().glob("*.hpp"))


def template_sources() -> list[Path]:
    """Every hand-written file a generated folder depends on (its fingerprint's sources):
    the templates and the generator's own code."""
    return [*headers(), *sorted((template_dir() / "templates").iterdir()),
            *python_sources("flow.backends.hls", "flow.backends.thresholds",
                            "flow.backends.requant", "flow.packing")]


def testbench_source(name: str) -> str:
    return fill_template("hls", "tb.cpp", name=name)


def tcl_script(name: str, part: str, clock_ns: float) -> str:
    return fill_template("hls", "run_hls.tcl", name=name, part=part, clock_ns=f"{clock_ns:g}")


def tcl_target(folder: Path) -> tuple[str, float]:
    """(part, clock period) of an existing folder's run_hls.tcl, else the defaults: kept
    when the folder is regenerated for a changed IR."""
    tcl = folder / "run_hls.tcl"
    text = tcl.read_text() if tcl.is_file() else ""
    part = re.search(r"^set_part \{(.+)\}$", text, re.M)
    clock = re.search(r"^create_clock -period (\S+) ", text, re.M)
    return (part.group(1) if part else DEFAULT_PART,
            float(clock.group(1)) if clock else DEFAULT_CLOCK_NS)


def sources(model: Model, part: str = DEFAULT_PART, clock_ns: float = DEFAULT_CLOCK_NS
            ) -> dict[str, str | bytes]:
    """Every file of build_dir/hls/ by name (testbench data as raw int64).

    The last layer may carry thresholds (template tests use single hidden layers): the top
    then outputs its codes, and so does the golden model."""
    name = c_identifier(model.name)
    layer_stages = stages(model)
    files: dict[str, str | bytes] = {p.name: p.read_text() for p in headers()}
    for s in layer_stages:
        files.update(s.files())
    files.update(top_sources(name, model, layer_stages))
    files[f"{name}_tb.cpp"] = testbench_source(name)
    files["run_hls.tcl"] = tcl_script(name, part, clock_ns)
    codes = synthetic.random_codes(model, TB_SAMPLES)
    files["tb_input.bin"] = codes.astype("<i8").tobytes()
    files["tb_expected.bin"] = golden.run_codes(model, codes).astype("<i8").tobytes()
    return files


def write_sources(folder: Path, model: Model, files: dict[str, str | bytes]) -> Path:
    def build(tmp: Path) -> None:
        for k, v in files.items():
            if isinstance(v, bytes):
                (tmp / k).write_bytes(v)
            else:
                (tmp / k).write_text(v)
        write_stamp(tmp, model, template_sources())

    return replace_dir(folder, build)


def generate(model: Model, build_dir: Path, part: str = DEFAULT_PART,
             clock_ns: float = DEFAULT_CLOCK_NS) -> Path:
    """Write build_dir/hls/ (atomically) and return it."""
    model.validate(model.name)
    return write_sources(Path(build_dir) / "hls", model, sources(model, part, clock_ns))


def current(model: Model, build_dir: Path) -> Path:
    """build_dir/hls/ as generated from this IR and these templates: regenerated (keeping
    run_hls.tcl's part and clock) when its stamp differs."""
    folder = Path(build_dir) / "hls"
    if not is_current(folder, model, template_sources()):
        write_sources(folder, model, sources(model, *tcl_target(folder)))
    return folder
