"""A qflow build folder: how qflow knows one beyond doubt, and the only ways it changes one.

- **Marked.** A build folder holds `.qflow-build`, a marker only qflow writes (its schema and
  the qflow version). A command writes into a folder only when the folder is new, empty or
  marked; `qflow report ~/thesis` is refused, whatever files are there.
- **Only qflow's names.** A marked folder holds only the names qflow writes (`OUTPUTS`).
  Anything else in it is the user's: a command that would replace the folder refuses and
  names it, so that nothing qflow did not write is ever deleted.
- **One writer.** Writers hold the folder's lock (flock on a file beside it, re-entrant
  within a process, released by the kernel when a process dies), so two commands never
  leave two models' outputs side by side.
- **Whole or not at all.** A whole build is made in a staging folder beside it and exchanged
  with the old one in one step (renameat2 RENAME_EXCHANGE; two renames where the file system
  lacks it, an orphaned `.NAME.old` restored on the next start). Staging folders carry
  their process id: the next writer removes those whose process is gone.
- **Resolved once.** `--out` is made absolute (`..`, `.`) and a symbolic link is followed to
  the folder it names, which is then the build; a dangling link is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from flow import __version__
from flow.atomic import exchange

log = logging.getLogger("qflow.build")

MARKER = ".qflow-build"
SCHEMA = "qflow.build/1"
STAGE_TAG = "qflow-stage"  # staging folders: .NAME.qflow-stage.PID.XXXXXXXX
LOCK_SUFFIX = "qflow-lock"  # the lock beside a build: .NAME.qflow-lock
# What qflow writes at a build folder's top level; every name a command writes is listed
# here (tests/flow/test_buildfolder.py runs every command on one build and checks it).
OUTPUTS = frozenset({
    MARKER,
    # train, sweep
    "config.yaml", "checkpoint.pt", "float_checkpoint.pt", "train.json", "sweep.json",
    "sweep.png",
    # export, compile: the model, the IR and each backend's generated folder
    "model.qonnx.onnx", "model.qonnx.onnx.data", "model.qdq.onnx", "ir.json", "ir.npz", "rtl",
    "hls", "firmware",
    # checks and their work folders
    "verify.json", "sim.json", "hls.json", "firmware.json", "check.json", "verify.subset.json",
    "sim.subset.json", "hls.subset.json", "firmware.subset.json", "check.subset.json",
    "sim", "hls_csim", "firmware_build",
    # synthesis, boards, the microcontroller, the report
    "synth", "synth.json", "board", "mcu", "report.md", "analysis.json", "figures",
    # explore
    "explore.json", "explore.png", "points",
})
# a folder name leaves room for the staging, partial and lock names built from it
NAME_HEADROOM = len(f"..{STAGE_TAG}.4194304.XXXXXXXX")


def _names(entries: list[str], shown: int = 5) -> str:
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return ", ".join(repr(e) for e in entries[:shown]) + more


def location(path: Path | str, what: str = "build folder") -> Path:
    """The absolute folder that `path` names: `..` and `.` resolved, a symbolic link
    followed to its target (the link stays as the user made it); refuses a dangling link,
    the root and a name too long to stage beside."""
    given = Path(path)
    p = Path(os.path.abspath(given))
    if p.is_symlink():
        target = Path(os.path.realpath(p))
        if not target.exists():
            raise ValueError(f"{given}: a symbolic link to {target}, which does not exist; "
                             f"make that folder or give another {what}")
        p = target
    if p.parent == p:
        raise ValueError(f"{given}: the root folder cannot be a {what}")
    above = p.parent
    while not above.exists() and above.parent != above:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"{given}: {above} is a file, not a folder")
    limit = _name_max(p.parent)
    if len(os.fsencode(p.name)) + NAME_HEADROOM > limit:
        raise ValueError(f"{given}: a name of {len(os.fsencode(p.name))} bytes; a {what} "
                         f"name has at most {limit - NAME_HEADROOM} here (qflow stages it "
                         "under a longer name beside it)")
    return p


def _name_max(folder: Path) -> int:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def is_build(path: Path) -> bool:
    """Whether `path` is a folder with qflow's marker (a regular file of this schema)."""
    marker = Path(path) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        doc = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("schema") == SCHEMA


def mark(folder: Path) -> None:
    """Write the marker into a folder qflow made (a staging or partial folder)."""
    (Path(folder) / MARKER).write_text(json.dumps({"schema": SCHEMA, "qflow": __version__}) + "\n")


def require_build(path: Path) -> None:
    """`path` must be a qflow build (for the commands that add to one: verify, sim, report, ...)."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such build folder (run `qflow train` and "
                                "`qflow export`, or `qflow compile`, first)")
    if not is_build(path):
        raise ValueError(f"{path}: not a qflow build folder (no {MARKER} marker); qflow "
                         "writes only into folders it made. A build made by an older qflow: "
                         "run `qflow export` (or `qflow compile`) into a new folder")


def foreign_entries(path: Path) -> list[str]:
    """The top-level entries of a folder that qflow did not write (all of them when the
    folder has no marker)."""
    entries = sorted(e.name for e in path.iterdir())
    if not is_build(path):
        return entries
    return [e for e in entries if e not in OUTPUTS]


def check_replaceable(path: Path) -> None:
    """A folder that a whole new build may replace: new, empty, or a build holding only
    what qflow wrote. The error names what is there."""
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder; choose a new or empty folder")
    foreign = foreign_entries(path)
    if not foreign:
        return
    if is_build(path):
        raise ValueError(f"{path}: a qflow build that also holds {_names(foreign)}, which "
                         "qflow did not write; move them out of the folder first")
    raise ValueError(f"{path}: holds {_names(foreign)} and is not a qflow build (no {MARKER} "
                     "marker); qflow never replaces files it did not write: choose a new or "
                     "empty folder")


# ---- the writer's lock ------------------------------------------------------------------

_held: dict[Path, int] = {}  # folders this process holds the lock of, with nesting depth


@contextlib.contextmanager
def writing(path: Path | str, create: bool = False) -> Iterator[Path]:
    """Hold `path`'s writer lock; yields the resolved folder. Without `create` the folder
    must already be a build. On first entry, recovers what an interrupted swap left and
    removes the staging folders of processes that are gone."""
    p = location(path)
    if p in _held:
        _held[p] += 1
        try:
            yield p
        finally:
            _held[p] -= 1
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    lock = p.parent / f".{p.name}.{LOCK_SUFFIX}"
    fd = _lock(lock, p)
    try:
        _recover(p)
        if not create:
            require_build(p)
        _refuse_links(p)
        _held[p] = 1
        try:
            yield p
        finally:
            del _held[p]
    finally:
        lock.unlink(missing_ok=True)  # while held: a waiter then finds its file gone, retries
        os.close(fd)  # closing releases the flock


def _refuse_links(path: Path) -> None:
    """qflow writes no symbolic links into a build: one found there (e.g. `figures` pointing
    at a user's folder) would have commands write through it, outside the build."""
    if is_build(path):
        links = sorted(e.name for e in path.iterdir() if e.is_symlink())
        if links:
            raise ValueError(f"{path}: holds symbolic links ({_names(links)}); qflow writes "
                             "none and would write through them: remove them")


def _lock(lock: Path, build: Path) -> int:
    """flock `lock` (created if need be); retried until the locked file is still the one
    at that name, since the holder removes it when done."""
    waited = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not waited:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                log.warning("build %s: another qflow (process %s) is writing it; waiting "
                            "(Ctrl-C to give up)", build, holder)
                waited = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(lock, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for a waiter's message
            return fd
        os.close(fd)


def _recover(path: Path) -> None:
    """What an interrupted command left beside `path`: the old build of a two-rename swap
    (restored when the build is missing) and staging folders of dead processes (removed)."""
    old = _old_name(path)
    if is_build(old):
        if not path.exists():
            os.rename(old, path)
            log.warning("build %s: restored from %s (an interrupted swap)", path, old.name)
        else:
            _remove_marked(old)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{STAGE_TAG}\.(\d+)\.")
    for entry in path.parent.iterdir():
        m = pattern.match(entry.name)
        if m and not _alive(int(m.group(1))) and is_build(entry):
            log.info("build %s: removing %s (its process %s is gone)", path, entry.name,
                     m.group(1))
            _remove_marked(entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _old_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _remove_marked(folder: Path) -> None:
    """Delete a folder qflow made (it carries the marker); anything else stays."""
    if is_build(folder):
        shutil.rmtree(folder, ignore_errors=True)


def _remove_old(folder: Path) -> None:
    """The folder a new build replaced: a build (deleted) or an empty folder."""
    if is_build(folder):
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def claim(path: Path) -> None:
    """Make `path` a build folder to add results to (sweep, explore): a new or empty folder
    is marked; anything else must already be a build. Call it holding the lock."""
    if not path.exists():
        path.mkdir(parents=True)
    elif path.is_dir() and not any(path.iterdir()):
        pass
    else:
        require_build(path)
        return
    mark(path)


# ---- whole builds ---------------------------------------------------------------------------

def staging_folder(path: Path) -> Path:
    """A new, marked folder beside `path` to build in (its name carries this process id)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{STAGE_TAG}.{os.getpid()}.",
                                dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a build folder is for everyone to read
    mark(tmp)
    return tmp


def replace_build(path: Path | str, builder: Callable[[Path], object]) -> Path:
    """Build a whole build folder in staging, then exchange it for `path`'s (which must be
    new, empty or a build holding only qflow's files). A failure leaves `path` as it was."""
    with writing(path, create=True) as p:
        check_replaceable(p)
        stage = staging_folder(p)
        try:
            builder(stage)
            install(stage, p)
        except BaseException:
            _remove_marked(stage)
            raise
        return p


def install(stage: Path, path: Path) -> None:
    """Put the finished, marked folder `stage` at `path`, replacing the build there (it must be
    replaceable, under the lock: checked again here, since a long build may have given the
    user time to add files) in one step where the OS allows."""
    check_replaceable(path)
    if not path.exists():
        os.rename(stage, path)
        return
    if exchange(stage, path):
        _remove_old(stage)  # it now holds the old build (or the empty folder it replaced)
        return
    old = _old_name(path)
    _remove_marked(old)
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    else:
        if not is_build(path):
            raise ValueError(f"{path}: not a qflow build; not replaced")
        os.rename(path, old)  # a crash here leaves .NAME.old: restored on the next start
    os.rename(stage, path)
    _remove_marked(old)
