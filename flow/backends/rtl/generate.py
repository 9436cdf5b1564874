"""build_dir/rtl/: the model's top, the stages' memory images (and, for ECP5, their block
ROMs' DP16KD contents: dp16kd.py), manifest.json and the fingerprint stamp, written as a
whole (a reader never sees half a folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flow.atomic import replace_dir, write_json
from flow.backends.rtl import dp16kd, top
from flow.backends.rtl.ops import block_sources
from flow.fingerprint import is_current, python_sources, write_stamp
from flow.ir import Model

MANIFEST = "manifest.json"


def generator_sources() -> list[Path]:
    """What a generated folder depends on besides the IR (its fingerprint's sources): the
    rtl/ blocks (the ECP5 ones too) and the generator's own code."""
    return [*block_sources(), *dp16kd.ecp5_blocks(),
            *python_sources("flow.backends.rtl", "flow.backends.thresholds",
                            "flow.backends.requant", "flow.packing")]


def rtl_dir(build_dir: Path) -> Path:
    return Path(build_dir) / "rtl"


def generate(model: Model, build_dir: Path, fifo_depths: list[int] | None = None) -> Path:
    """Write build_dir/rtl/ (top, memory images, manifest.json, fingerprint.json); the FIFOs
    between stages sized by top.fifo_depths, or `fifo_depths` where given (a ValueError
    naming the FIFO when one is smaller than the sizing needs)."""
    model.validate(model.name)
    needed = top.fifo_depths(model)
    fifo_depths = needed if fifo_depths is None else fifo_depths
    top.check_fifo_depths(model, fifo_depths, needed)
    folder = rtl_dir(build_dir)
    # absolute: Yosys resolves a relative $readmemh name beside rom.sv, not the top
    image_dir = folder.resolve()
    parts = top.stages(model, image_dir)
    name = top.top_name(model)

    def build_folder(tmp: Path) -> None:
        for st in parts:
            st.write_images(tmp)
        (tmp / f"{name}.sv").write_text(top.top_source(model, parts, fifo_depths))
        images = {f: text for st in parts for f, text in st.images.items()}
        manifest = {
            "top": name,
            "sources": [str(p) for p in block_sources()] + [str(image_dir / f"{name}.sv")],
            "ecp5_sources": dp16kd.write_init(tmp, image_dir, images),
            "mem_files": [str(image_dir / f) for st in parts for f in st.images],
            "layers": [{"name": layer.name, "instance": st.name, **st.summary}
                       for layer, st in zip(model.layers, parts, strict=True)],
            "fifos": [{"instance": f"l{i}_fifo", "after": layer.name, "depth": depth,
                       "needed": need}
                      for i, (layer, depth, need) in enumerate(zip(
                          model.layers[:-1], fifo_depths, needed, strict=True))],
            "expected": {"initiation_interval": top.expected_interval(model),
                         "latency": top.expected_latency(model)},
        }
        write_json(tmp / MANIFEST, manifest)
        write_stamp(tmp, model, generator_sources(), location=image_dir)

    return replace_dir(folder, build_folder)


def up_to_date(model: Model, build_dir: Path) -> bool:
    """True when build_dir/rtl/ was generated from exactly this IR, these rtl/ blocks and
    this generator, in this folder (the top names its memory images by absolute path: a
    moved build folder is stale too)."""
    folder = rtl_dir(build_dir)
    return is_current(folder, model, generator_sources(), location=folder)


def current_manifest(model: Model, build_dir: Path) -> dict[str, Any]:
    """build_dir/rtl/'s manifest, the folder (re)generated first unless up_to_date."""
    folder = rtl_dir(build_dir)
    if not up_to_date(model, build_dir):
        generate(model, build_dir)
    return json.loads((folder / MANIFEST).read_text())
