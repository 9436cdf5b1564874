"""build_dir/rtl/: the model's top, the stages' memory images (and, for ECP5, their block
ROMs' DP16KD contents: dp16kd.py), copies of the hand-written blocks the top uses,
manifest.json and the fingerprint stamp, written as a whole (a reader never sees half a
folder).

rtl/ is self-contained: every name in it (the top's $readmemh images, the manifest's
files) is relative to rtl/ itself, so a build folder can be moved, copied or handed over,
and a tool run inside rtl/ finds everything. Every consumer (simulation, synthesis, the
board) reads the manifest's files only (load_manifest), so one build never mixes the
blocks of two qflow installs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from flow.atomic import replace_dir, write_json
from flow.backends.rtl import dp16kd, top
from flow.backends.rtl.ops import block_sources
from flow.backends.rtl.stage import Stage
from flow.fingerprint import STAMP, file_digest, is_current, python_sources, write_stamp
from flow.ir import Model

MANIFEST = "manifest.json"
FILE_KEYS = ("sources", "ecp5_sources", "mem_files")  # the manifest's lists of files
HERE = Path()  # the top names its memory images relative to rtl/, where the tools run


def generator_sources() -> list[Path]:
    """What a generated folder depends on besides the IR (its fingerprint's sources): the
    rtl/ blocks (the ECP5 ones too) and the generator's own code."""
    return [*block_sources(), *dp16kd.ecp5_blocks(),
            *python_sources("flow.backends.rtl", "flow.backends.thresholds",
                            "flow.backends.requant", "flow.packing")]


def rtl_dir(build_dir: Path) -> Path:
    return Path(build_dir) / "rtl"


def write_design(folder: Path, name: str, top_text: str, parts: list[Stage],
                 blocks: list[Path]) -> dict[str, Any]:
    """Write a top `name` into `folder` with its stages' memory images, copies of `blocks`
    and of the ECP5 blocks, and the DP16KD package; returns the manifest's file entries
    (names relative to `folder`) and `files`, every written file's sha256."""
    folder = Path(folder)
    for st in parts:
        st.write_images(folder)
    (folder / f"{name}.sv").write_text(top_text)
    (folder / dp16kd.ECP5_FOLDER).mkdir()
    for src in blocks:
        shutil.copyfile(src, folder / src.name)
    for src in dp16kd.ecp5_blocks():
        shutil.copyfile(src, folder / dp16kd.ECP5_FOLDER / src.name)
    images = {f: text for st in parts for f, text in st.images.items()}
    entries: dict[str, Any] = {
        "sources": [p.name for p in blocks] + [f"{name}.sv"],
        "ecp5_sources": dp16kd.write_init(folder, images),
        "mem_files": list(images),
    }
    entries["files"] = {f: file_digest(folder / f)
                        for key in FILE_KEYS for f in entries[key]}
    return entries


def generate(model: Model, build_dir: Path, fifo_depths: list[int] | None = None) -> Path:
    """Write build_dir/rtl/ (top, memory images, blocks, manifest.json, fingerprint.json);
    the FIFOs between stages sized by top.fifo_depths, or `fifo_depths` where given (a
    ValueError naming the FIFO when one is smaller than the sizing needs)."""
    model.validate(model.name)
    needed = top.fifo_depths(model)
    fifo_depths = needed if fifo_depths is None else fifo_depths
    top.check_fifo_depths(model, fifo_depths, needed)
    parts = top.stages(model, HERE)
    name = top.top_name(model)

    def build_folder(tmp: Path) -> None:
        manifest = {
            "top": name,
            **write_design(tmp, name, top.top_source(model, parts, fifo_depths), parts,
                           block_sources(model.layers)),
            "layers": [{"name": layer.name, "instance": st.name, **st.summary}
                       for layer, st in zip(model.layers, parts, strict=True)],
            "fifos": [{"instance": top.fifo_name(model, e),
                       "after": top.produced(model, e.src)[0], "depth": depth, "needed": need,
                       **({} if model.is_chain else {"before": model.layers[e.dst].name})}
                      for e, depth, need in zip(top.edges(model), fifo_depths, needed,
                                                strict=True)],
            "expected": {"initiation_interval": top.expected_interval(model),
                         "latency": top.expected_latency(model)},
        }
        write_json(tmp / MANIFEST, manifest)
        write_stamp(tmp, model, generator_sources())

    return replace_dir(rtl_dir(build_dir), build_folder)


def up_to_date(model: Model, build_dir: Path) -> bool:
    """True when build_dir/rtl/ was generated from exactly this IR, these rtl/ blocks and
    this generator (wherever the build folder has moved since)."""
    return is_current(rtl_dir(build_dir), model, generator_sources())


def load_manifest(folder: Path) -> dict[str, Any]:
    """folder/manifest.json (folder: an rtl/ as generate writes it, or made by hand) with
    its files as absolute paths, for this run only. Each must be named relative to the
    folder, inside it, and be a regular file, not a symbolic link: a ValueError or
    FileNotFoundError naming the manifest and the entry otherwise."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no RTL manifest; run `qflow export` (rtl backend) "
                                f"first")
    try:
        m = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e}); delete {folder} to regenerate it") from e
    if not isinstance(m, dict) or not isinstance(m.get("top"), str) or "sources" not in m:
        raise ValueError(f"{path}: needs a top name and a sources list")
    root = folder.resolve()
    for key in FILE_KEYS:
        names = m.get(key, [])
        if not isinstance(names, list):
            raise ValueError(f"{path}: {key} must be a list of file names")
        m[key] = [str(member(root, path, key, name)) for name in names]
    return m


def member(root: Path, manifest: Path, key: str, name: object) -> Path:
    """root/name for a manifest entry that names a regular file inside root by a relative
    path (no '..', no symbolic link on the way)."""
    rel = PurePosixPath(name) if isinstance(name, str) else None
    if rel is None or rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"{manifest}: {key} entry {name!r} must be a file name relative to "
                         f"{root.name}/ (a generated rtl/ holds everything it uses); "
                         f"regenerate it with `qflow export`")
    file = root.joinpath(*rel.parts)
    walk = root
    for part in rel.parts:
        walk = walk / part
        if walk.is_symlink():
            raise ValueError(f"{manifest}: {key} entry {name!r} is a symbolic link "
                             f"({walk} -> {walk.readlink()}); qflow reads only the files "
                             f"inside {root}")
    if not file.is_file():
        raise FileNotFoundError(f"{manifest}: lists {file}, which does not exist")
    return file


def recorded_files(folder: Path) -> dict[str, str]:
    """The files generate wrote into folder, by name, with their sha256 (empty when the
    manifest is missing or predates this record)."""
    try:
        files = json.loads((Path(folder) / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return files if isinstance(files, dict) else {}


def changed_files(folder: Path) -> list[str]:
    """The files of a generated rtl/ that are not as generate wrote them: present with
    another content (or as a symbolic link), or not written by it (a user's own files)."""
    folder = Path(folder)
    written = recorded_files(folder)
    if not written:
        return []
    edited = [rel for rel, digest in written.items() if (folder / rel).is_symlink()
              or ((folder / rel).is_file() and file_digest(folder / rel) != digest)]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if not p.is_dir() or p.is_symlink()}
    return sorted([*edited, *(present - set(written) - {MANIFEST, STAMP})])


def current_manifest(model: Model, build_dir: Path) -> dict[str, Any]:
    """build_dir/rtl/'s manifest (load_manifest), the folder (re)generated first unless
    up_to_date. A file of rtl/ edited, replaced or added by hand is refused by name, never
    simulated or synthesized as if qflow had made it, nor lost to a regeneration."""
    folder = rtl_dir(build_dir)
    changed = changed_files(folder)
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5
                                          else "")
        raise ValueError(f"{folder}: {shown} changed since qflow generated it (not as "
                         f"manifest.json records); qflow checks only the design it "
                         f"generated: move your changes elsewhere and delete {folder} "
                         f"to regenerate it")
    if not up_to_date(model, build_dir) or not all(
            (folder / rel).is_file() for rel in recorded_files(folder)):
        generate(model, build_dir)
    return load_manifest(folder)
