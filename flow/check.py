"""`qflow check DIR`: every check a build can take, in one command (the main job's).

verify (golden against qonnx's executor and Brevitas' forward; a requantized layer's
measured difference from the float graph is "explained", not a failure), then each
backend's check as flow.backends.registry declares it (the RTL simulation, the HLS C
simulation, the firmware on the host and on RV32IMC), each against the golden model on the
build's test split. A backend that does not build one of the model's layer kinds yet is
skipped with the reason. check.json records each check's outcome (under "checks"); the
command fails when any check ran and differs (after running the others).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

from flow import backends
from flow.backends import registry
from flow.buildfolder import writing
from flow.ir import load
from flow.results import write_result
from flow.tools import MissingTool

log = logging.getLogger("qflow.check")

def check_build(build_dir: Path, limit: int | None = None) -> dict[str, Any]:
    """Every check on the build's test split (its first `limit` samples: check.subset.json)."""
    with writing(build_dir) as folder:
        return _check_build(folder, limit)


def _check_build(build_dir: Path, limit: int | None) -> dict[str, Any]:
    from flow.verify import verify

    model = load(build_dir)
    outcome: dict[str, dict[str, Any]] = {}
    start = time.monotonic()
    v = verify(build_dir, limit)
    # "explained": golden differs from the float graph only by the measured requantization
    status = "equal" if v["all_equal"] else "explained" if v["passed"] else "differs"
    outcome["verify"] = {"status": status, "seconds": round(time.monotonic() - start, 1)}
    for backend, check in registry.checked():  # each backend's check, as it registers
        name = check.name
        missing = backends.unsupported(backend.name, model)
        if missing:
            reason = f"the {backend.name} backend does not build {', '.join(missing)} yet"
            log.warning("check: %s skipped: %s", name, reason)
            outcome[name] = {"status": "skipped", "reason": reason}
            continue
        start = time.monotonic()
        try:
            getattr(importlib.import_module(check.module), check.function)(build_dir, None, limit)
            outcome[name] = {"status": "equal"}
        except MissingTool as e:  # as for a layer kind not built yet: skipped, with the reason
            log.warning("check: %s skipped: %s", name, e)
            outcome[name] = {"status": "skipped", "reason": str(e)}
            continue
        except RuntimeError as e:  # run_check's "differs", or a tool that failed
            outcome[name] = {"status": "differs", "error": str(e)}
        outcome[name]["seconds"] = round(time.monotonic() - start, 1)
    path = write_result(build_dir, "check", model, {"checks": outcome}, limit is None)
    for name, o in outcome.items():
        log.info("check: %-8s %s%s", name, o["status"],
                 f" ({o['reason']})" if "reason" in o else f" in {o['seconds']} s")
    bad = [n for n, o in outcome.items() if o["status"] == "differs"]
    if bad:
        raise RuntimeError(f"check: {', '.join(bad)} differ from the golden model "
                           f"(see {path} and each check's JSON)")
    return outcome
