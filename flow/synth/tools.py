"""Running the open tools (YoWASP's Yosys and nextpnr, or ones on PATH): a log per run,
a progress line while it runs, a timeout, the sandbox's mounts, and one synthesis session."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flow.tools import require_tool

log = logging.getLogger("qflow.synth")

PROGRESS_EVERY = 30.0  # seconds between progress lines of a running tool


def tool_path(name: str) -> str:
    """The YoWASP build of a tool beside this Python (the venv), else one on PATH; a
    RuntimeError saying how to get it when there is none (flow.tools.require_tool)."""
    return require_tool(name, "synthesis", (f"yowasp-{name}", name))


@dataclass
class ToolResult:
    name: str
    log: Path
    returncode: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# the lines that name a stage: Yosys' numbered passes, nextpnr's packer/placer/router steps
STAGE_RE = re.compile(r"^(\d+(?:\.\d+)*\. Executing .*|Info: (?:Packing|Running|Routing|Creating"
                      r"|Promoting|Setting up|Generating)\b.*)$")


def progress(path: Path, limit: int = 120) -> str:
    """The current stage and the last line of a growing log, for a progress message."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [ln for ln in lines if ln]
    stage = next((ln for ln in reversed(lines) if STAGE_RE.match(ln)), "")
    last = lines[-1] if lines else ""
    return stage[:limit] + (f" | {last[:limit]}" if last != stage else "")


def run_tool(name: str, argv: list[str], logfile: Path, cwd: Path, env: dict[str, str],
             timeout: float | None) -> ToolResult:
    """Run argv with stdout+stderr to logfile; a progress line every PROGRESS_EVERY s."""
    log.info("%s started (log %s)", name, logfile)
    res = ToolResult(name, logfile)
    t0 = time.monotonic()
    with open(logfile, "wb") as out:
        # own process group, so that a timeout ends the tool and anything it started
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)
        while True:
            try:
                proc.wait(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - t0
                if timeout is not None and elapsed > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    res.timed_out = True
                    break
                log.info("%s running %.0fs: %s", name, elapsed, progress(logfile))
    res.returncode = proc.returncode
    res.seconds = round(time.monotonic() - t0, 2)
    text = logfile.read_text(errors="replace")
    # Yosys repeats its error at the end of the log: keep each line once
    res.errors = list(dict.fromkeys(ln.strip() for ln in text.splitlines() if "ERROR" in ln))[:20]
    if res.timed_out:
        res.errors.insert(0, f"{name} timed out after {timeout:.0f} s")
    elif not res.ok and not res.errors:
        res.errors = [f"{name} exited with code {res.returncode}: {progress(logfile)}"]
    log.info("%s %s in %.1fs", name, "done" if res.ok else "FAILED", res.seconds)
    return res


def yowasp_mounts(cwd: Path, paths: list[Path]) -> str:
    """YOWASP_MOUNT for the tools' WebAssembly sandbox, whose /tmp is a private folder that
    would hide a build under /tmp: each folder the tools need is mounted at its own path
    (/tmp/<name> outranks the sandbox's /tmp, the longer prefix winning), and `cwd` at /,
    where the sandbox resolves relative names such as the top's $readmemh images."""
    roots = set()
    for path in paths:
        parts = path.resolve().parts  # ("/", "work", ...)
        roots.add(Path(*parts[:3 if len(parts) > 2 and parts[1] == "tmp" else 2]))
    mounts = [f"/={cwd}", *(f"{r}={r}" for r in sorted(roots))]
    for m in mounts:
        if ":" in m or m.count("=") != 1:
            raise ValueError(f"{m.split('=', 1)[1]}: a path with ':' or '=' cannot be mounted")
    return ":".join(mounts)


@dataclass
class Session:
    """One synthesis run: the manifest, the output folder, and where the tools run (`cwd`,
    the rtl/ folder, which the generated top names its memory images relative to).
    Every path handed to a tool is absolute; `env` carries the sandbox's mounts."""

    manifest: dict[str, Any]
    out: Path
    cwd: Path
    timeout: float | None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        files = [Path(f) for f in self.manifest["sources"] + self.manifest["mem_files"]
                 + self.manifest.get("ecp5_sources", [])]
        self.env = {**os.environ, "YOWASP_MOUNT": yowasp_mounts(self.cwd, [self.out, *files])}

    def run(self, name: str, argv: list[str], logname: str) -> ToolResult:
        return run_tool(name, argv, self.out / logname, self.cwd, self.env, self.timeout)

    def read_sources(self, ecp5: bool = False) -> str:
        """The read_verilog command; ecp5: for synth_ecp5, with the manifest's ecp5_sources
        first and QFLOW_ECP5 defined (block ROMs as DP16KD with their output register,
        flow.backends.rtl.dp16kd), where the manifest has them."""
        # -defer: modules are elaborated with their real parameters only, so a default such
        # as an empty $readmemh file name is never evaluated
        extra = self.manifest.get("ecp5_sources", []) if ecp5 else []
        return ("read_verilog -defer -sv" + (" -DQFLOW_ECP5" if extra else "") + " "
                + " ".join(f'"{f}"' for f in [*extra, *self.manifest["sources"]]))

    def yosys(self, name: str, tag: str, lines: list[str], ecp5: bool = False) -> ToolResult:
        script = self.out / f"{tag}.ys"
        script.write_text("\n".join([self.read_sources(ecp5), *lines]) + "\n")
        return self.run(name, [tool_path("yosys"), "-s", str(script)], f"{tag}.log")

