"""build_dir/firmware/: the ESP-IDF project (example app in main/, the component
components/qflow_model/ with the runtime kernels and the generated model), size_report.json
and the fingerprint stamp; every text file is a template of firmware/templates/ filled in."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from flow import golden
from flow.atomic import replace_dir, write_json
from flow.backends.firmware.budget import APP_PARTITION, check_budget, size_report
from flow.backends.firmware.common import (
    COMPONENT,
    c_array,
    c_literals,
    input_ctype,
    runtime_sources,
    template_files,
)
from flow.backends.firmware.emit import model_data_files, model_files
from flow.backends.firmware.plan import Plan, plan
from flow.data import DataError
from flow.fingerprint import is_current, python_sources, write_stamp
from flow.inputs import test_codes
from flow.ir import Model
from flow.resources import fill_template
from flow.synthetic import random_codes

log = logging.getLogger("qflow.firmware")
EXAMPLE_VECTORS = 16  # test vectors embedded in the example app


def generator_sources() -> list[Path]:
    """The hand-written files a generated folder depends on (its fingerprint's sources): the
    runtime, the templates and the generator's own code."""
    return (runtime_sources() + template_files("project") + template_files("component")
            + python_sources("flow.backends.firmware", "flow.packing"))


def example_vectors(model: Model, n: int = EXAMPLE_VECTORS) -> np.ndarray:
    """Test inputs for the example app: the test split of the dataset the IR names, else
    random codes (a compiled model may name none, or one this machine lacks)."""
    try:
        return test_codes(model, n)
    except DataError:
        return random_codes(model, n)


def test_vectors_files(model: Model, codes: np.ndarray) -> dict[str, str]:
    """main/test_vectors.h and .c: inputs with the golden model's accumulators and classes."""
    acc = golden.run_codes(model, codes)
    y = golden.dequantize_output(model.output, acc).reshape(len(codes), -1)

    def rows(ctype: str, decl: str, a: np.ndarray) -> str:
        lines = ",\n".join("    {" + ", ".join(c_literals(ctype, r)) + "}" for r in a)
        return f"const {ctype} {decl} = {{\n{lines}\n}};\n"

    return {
        "main/test_vectors.h": fill_template("firmware", "project/main/test_vectors.h", count=len(codes)),
        "main/test_vectors.c": fill_template(
            "firmware", "project/main/test_vectors.c",
            inputs=rows(input_ctype(model),
                        "qflow_test_inputs[QFLOW_TEST_VECTORS][QFLOW_IN_FEATURES]", codes),
            expected=rows("int32_t",
                          "qflow_test_expected[QFLOW_TEST_VECTORS][QFLOW_OUT_FEATURES]", acc),
            classes=c_array("int", "qflow_test_classes", y.argmax(1)).replace(
                f"qflow_test_classes[{len(codes)}]", "qflow_test_classes[QFLOW_TEST_VECTORS]"
            ).rstrip("\n")),
    }


def package_files(p: Plan, vectors: np.ndarray) -> dict[str, str]:
    """Every generated text file of build_dir/firmware/, by relative path."""
    component = {**model_data_files(p), **model_files(p)}
    sources = sorted([f.name for f in runtime_sources() if f.suffix == ".c"]
                     + [name for name in component if name.endswith(".c")])
    component["CMakeLists.txt"] = fill_template(
        "firmware", "component/CMakeLists.txt", sources=" ".join(f'"{s}"' for s in sources))
    component["idf_component.yml"] = fill_template("firmware", "component/idf_component.yml",
                                                   model=p.model.name)
    return {
        **{f"components/{COMPONENT}/{name}": text for name, text in component.items()},
        "CMakeLists.txt": fill_template("firmware", "project/CMakeLists.txt"),
        "sdkconfig.defaults": fill_template("firmware", "project/sdkconfig.defaults"),
        "partitions.csv": fill_template("firmware", "project/partitions.csv",
                                        app_partition=f"{APP_PARTITION:#x}"),
        "main/CMakeLists.txt": fill_template("firmware", "project/main/CMakeLists.txt", component=COMPONENT),
        "main/main.c": fill_template("firmware", "project/main/main.c"),
        **test_vectors_files(p.model, vectors),
    }


def target_chip(model: Model, chip: str | None = None) -> str:
    """The chip to build for: the one asked, else the build config's `firmware.chip` (kept
    in the IR's meta by export), else the ESP32."""
    return chip or str(model.meta.get("firmware", {}).get("chip", "esp32"))


def generate(model: Model, build_dir: Path, chip: str | None = None) -> Path:
    """Write build_dir/firmware/ (ESP-IDF project + component, size_report.json, stamp)
    atomically; FirmwareError when the model does not fit `chip` (`target_chip`)."""
    build_dir = Path(build_dir)
    chip = target_chip(model, chip)
    p = plan(model)
    report = size_report(p, chip)
    check_budget(report, chip)
    files = package_files(p, example_vectors(model))

    def build(tmp: Path) -> None:
        component = tmp / "components" / COMPONENT
        component.mkdir(parents=True)
        for f in runtime_sources():
            shutil.copy2(f, component / f.name)
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        write_json(tmp / "size_report.json", report)
        write_stamp(tmp, model, generator_sources())

    out = replace_dir(build_dir / "firmware", build)
    for lp in p.layers:
        if lp.why:
            log.info("firmware: layer %d (%s): %s, %s", lp.index, lp.layer.name,
                     lp.kernel_name, lp.why)
    log.info("firmware: %s: weights %d B, thresholds %d B, arena %d B -> %s", model.name,
             report["weights_bytes"], report["threshold_bytes"], report["arena_bytes"], out)
    return out


def ensure_generated(model: Model, build_dir: Path) -> Path:
    """build_dir/firmware/ for this very model and these sources (regenerated otherwise)."""
    folder = Path(build_dir) / "firmware"
    if is_current(folder, model, generator_sources()):
        return folder
    return generate(model, build_dir)
