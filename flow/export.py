"""`qflow export BUILD_DIR` and `qflow compile MODEL.onnx --out DIR`.

export: trained checkpoint -> Brevitas QONNX (model.qonnx.onnx) -> integer IR -> backends.
compile: any QONNX file -> integer IR -> backends. Nothing is written before lowering
succeeds, and every file is written under a temporary name, then renamed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from flow import backends
from flow.atomic import write_with
from flow.ir import Model
from flow.lower import lower

log = logging.getLogger("qflow.export")
DEFAULT_TARGET_CYCLES = 4096


def export_qonnx(model: Any, sample: Any, path: Path) -> Path:
    """Brevitas QONNX export of a torch module (eval mode) to `path`, atomically."""
    import torch
    from brevitas.export import export_qonnx as brevitas_export

    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        with torch.no_grad():
            brevitas_export(model, sample, export_path=str(out), verbose=False)
        write_with(Path(path), lambda p: shutil.copyfile(out, p))
    return Path(path)


def configure(model: Model, hardware: dict[str, Any]) -> None:
    """Folding from a config's `hardware` section (or CLI options): explicit per-layer
    [PE, SIMD] pairs, or the least hardware meeting target_cycles / target_fps at clock_mhz."""
    from flow import folding

    per_layer = hardware.get("folding")
    target = hardware.get("target_cycles")
    if hardware.get("target_fps"):
        target = folding.cycles_for_fps(float(hardware["target_fps"]),
                                        float(hardware.get("clock_mhz", 100.0)))
    if per_layer is not None and len(per_layer) != len(model.layers):
        raise ValueError(f"hardware.folding has {len(per_layer)} entries, the model has "
                         f"{len(model.layers)} layers")
    if per_layer is None and not target:
        target = DEFAULT_TARGET_CYCLES
        log.info("folding: no folding or target given; folding for %d cycles per frame", target)
    folding.apply_folding(model, [tuple(f) for f in per_layer] if per_layer else None,
                          int(target) if target else None)


def finish(model: Model, build_dir: Path, hardware: dict[str, Any]) -> Model:
    """Fold, write the IR, then generate every available backend."""
    configure(model, hardware)
    model.validate(str(build_dir))
    js, _ = model.save(build_dir)
    log.info("IR: %s (%d layers, initiation interval %d cycles)", js, len(model.layers),
             model.initiation_interval)
    for name in backends.available_generators():
        missing = backends.unsupported_kinds(name, model)
        if missing:
            log.warning("%s: not generated: it does not build %s layers yet", name,
                        ", ".join(missing))
            continue
        out = backends.get(name).generate(model, build_dir)
        log.info("%s: generated %s", name, out)
    return model


def export_build(build_dir: Path) -> Model:
    """The trained model of `build_dir` through export, lowering and generation."""
    import torch

    from flow.train import load_trained

    build_dir = Path(build_dir)
    model, cfg, ds = load_trained(build_dir)
    onnx_path = build_dir / "model.qonnx.onnx"
    export_qonnx(model, torch.from_numpy(ds.x_test[:1]), onnx_path)
    log.info("QONNX: %s", onnx_path)
    ir = lower(onnx_path, name=cfg["name"])
    ir.meta["data"] = cfg["data"]
    ir.meta["seed"] = cfg["seed"]
    return finish(ir, build_dir, cfg.get("hardware", {}))


def compile_onnx(onnx_path: Path, out_dir: Path, hardware: dict[str, Any],
                 data: dict[str, Any] | None = None) -> Model:
    """A QONNX file made anywhere through lowering and generation into `out_dir`."""
    ir = lower(Path(onnx_path))
    if data:
        ir.meta["data"] = data
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_with(out_dir / "model.qonnx.onnx", lambda p: shutil.copyfile(onnx_path, p))
    return finish(ir, out_dir, hardware)
