"""`qflow export BUILD_DIR` and `qflow compile MODEL.onnx --out DIR`.

export: trained checkpoint -> Brevitas QONNX (model.qonnx.onnx) -> integer IR -> backends.
compile: any QONNX file -> integer IR -> backends. Either builds the whole folder under a
temporary name beside it (export copies the training files in first) and swaps it in only
when every stage succeeded: a failed or killed command leaves the previous complete build,
and nothing of the old model's outputs (rtl/, sim.json, synth/, ...) survives a new one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from flow import backends, frontends
from flow.atomic import write_with
from flow.buildfolder import check_replaceable, replace_build, writing
from flow.frontends.onnxfile import copy_self_contained
from flow.ir import Model
from flow.lower import DEFAULT_ACTIVATION_FORM, DEFAULT_ROUNDING, lower
from flow.reference import QONNX_FILE

log = logging.getLogger("qflow.export")
DEFAULT_TARGET_CYCLES = 4096


def export_qonnx(model: Any, sample: Any, path: Path, dynamo: bool = True) -> Path:
    """Brevitas QONNX export of a torch module (eval mode) to `path`, atomically; by
    torch's dynamo exporter, or its TorchScript one."""
    import torch
    from brevitas.export import export_qonnx as brevitas_export

    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        with torch.no_grad():
            brevitas_export(model, sample, export_path=str(out), verbose=False, dynamo=dynamo)
        write_with(Path(path), lambda p: shutil.copyfile(out, p))
    return Path(path)


def configure(model: Model, hardware: dict[str, Any]) -> None:
    """Folding from a config's `hardware` section (or CLI options): explicit per-layer
    [PE, SIMD] pairs, a named preset (finn-examples' CNV foldings), or the least hardware
    meeting target_cycles / target_fps at clock_mhz."""
    from flow import folding

    per_layer = hardware.get("folding")
    if hardware.get("preset"):
        per_layer = folding.preset_folding(model, hardware["preset"])
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
    """Fold, write the IR, then generate every available backend that builds its kinds."""
    configure(model, hardware)
    model.validate(model.name)
    model.save(build_dir)
    log.info("IR: ir.json (%d layers, initiation interval %d cycles)", len(model.layers),
             model.initiation_interval)
    for name in backends.available_generators():
        missing = backends.unsupported(name, model)
        if missing:
            log.warning("%s: not generated: it does not build %s yet", name, ", ".join(missing))
            continue
        out = backends.get(name).generate(model, build_dir)
        log.info("%s: generated %s/", name, out.name)
    return model


def export_build(build_dir: Path) -> Model:
    """The trained model of `build_dir` through export, lowering and generation."""
    import torch

    from flow.train.trainer import TRAIN_FILES, load_trained

    with writing(build_dir) as build_dir:
        model, cfg, ds = load_trained(build_dir)
        result: list[Model] = []

        def build(stage: Path) -> None:
            for f in TRAIN_FILES:
                if (build_dir / f).is_file():
                    shutil.copy2(build_dir / f, stage / f)
            onnx_path = export_qonnx(model, torch.from_numpy(ds.x_test[:1]),
                                     stage / "model.qonnx.onnx")
            log.info("QONNX: model.qonnx.onnx")
            ir = lower(onnx_path, name=cfg["name"], activation=cfg["lower"]["activation"],
                       rounding=cfg["lower"]["rounding"])
            ir.meta["data"] = cfg["data"]
            ir.meta["seed"] = cfg["seed"]
            ir.meta["firmware"] = cfg["firmware"]  # the chip the firmware is built for
            result.append(finish(ir, stage, cfg.get("hardware", {})))

        replace_build(build_dir, build)
    log.info("export: build %s complete", build_dir)
    return result[0]


def check_dataset(model: Model, data: dict[str, Any]) -> None:
    """The dataset a build names must fit the model: its samples' shape and its labels."""
    from flow import data as datasets

    ds = datasets.load(data, int(model.meta.get("seed", 0)))
    shape = tuple(ds.x_test.shape[1:])
    if int(np.prod(shape)) != model.input.features:
        raise ValueError(f"--dataset {data['name']}: samples of shape {shape}; the model "
                         f"takes {model.input.shape}")
    classes = model.layers[-1].out_channels
    if ds.classes > classes:
        raise ValueError(f"--dataset {data['name']}: labels 0..{ds.classes - 1}; the model "
                         f"has {classes} outputs")


def compile_onnx(onnx_path: Path, out_dir: Path, hardware: dict[str, Any],
                 data: dict[str, Any] | None = None,
                 activation: str = DEFAULT_ACTIVATION_FORM,
                 rounding: str = DEFAULT_ROUNDING) -> Model:
    """A QONNX file made anywhere through lowering and generation into `out_dir`."""
    with writing(out_dir, create=True) as out_dir:
        return _compile(Path(onnx_path), out_dir, hardware, data, activation, rounding)


def _compile(onnx_path: Path, out_dir: Path, hardware: dict[str, Any],
             data: dict[str, Any] | None, activation: str, rounding: str) -> Model:
    check_replaceable(out_dir)  # before the work of lowering
    from flow.train.trainer import TRAIN_FILES

    trained = [f for f in TRAIN_FILES if (out_dir / f).exists()]
    if trained:  # compile replaces the folder whole: the training would be lost
        raise ValueError(f"--out {out_dir}: holds a trained model ({', '.join(trained)}), "
                         "which compile would replace; compile into another folder (`qflow "
                         "export` rebuilds a trained build)")
    ir = lower(Path(onnx_path), activation=activation, rounding=rounding)
    if data:
        ir.meta["data"] = data
        check_dataset(ir, data)

    normalized, frontend = frontends.load(Path(onnx_path))

    def build(stage: Path) -> None:
        # the model as given (external data checked and embedded): the build stands alone;
        # from another format, also the QONNX form its frontend lowered (qonnx's executor)
        write_with(stage / frontend.SOURCE_FILE, lambda p: copy_self_contained(onnx_path, p))
        if frontend.SOURCE_FILE != QONNX_FILE:
            write_with(stage / QONNX_FILE, lambda p: onnx.save(normalized, str(p)))
        finish(ir, stage, hardware)

    replace_build(out_dir, build)
    log.info("compile: build %s complete", out_dir)
    return ir
