"""The `qflow` command: train, export, compile, run, verify, and each backend's commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from flow.argtypes import positive_float, positive_int
from flow.atomic import write_with
from flow.buildfolder import writing

log = logging.getLogger("qflow")

# A stage module's hook that adds its subcommands to the qflow command.
RegisterCli = Callable[[argparse._SubParsersAction], None]


def plugins() -> list[str]:
    """Modules that add their own subcommands with register_cli(subparsers), when present:
    each backend's and its stages' (flow.backends.registry), then the report's."""
    from flow.backends import registry

    return [m for backend in registry.BACKENDS for m in backend.cli_modules] + ["flow.report"]


def cmd_train(a: argparse.Namespace) -> None:
    from flow.train import config
    from flow.train.trainer import train

    out = Path(a.out) if a.out else Path("build") / config.load(Path(a.config))["name"]
    if a.nproc is not None:
        from flow.train.distributed import launch

        launch(Path(a.config), out, a.nproc, a.nnodes, a.node_rank, a.master_addr,
               a.master_port, a.resume)
        return
    r = train(Path(a.config), out, resume=a.resume)
    log.info("train: test accuracy %.4f -> %s", r["test_accuracy"], out / "train.json")


def cmd_export(a: argparse.Namespace) -> None:
    from flow.export import export_build

    export_build(Path(a.build_dir))


def cmd_compile(a: argparse.Namespace) -> None:
    from flow.export import compile_onnx

    hardware: dict[str, object] = {}
    if a.target_cycles is not None:
        hardware["target_cycles"] = a.target_cycles
    if a.target_fps is not None:
        hardware.update(target_fps=a.target_fps, clock_mhz=a.clock_mhz)
    if a.folding_preset:
        hardware["preset"] = a.folding_preset
    data = {"name": a.dataset, **({"path": a.data_path} if a.data_path else {})} \
        if a.dataset else None
    compile_onnx(Path(a.model), Path(a.out), hardware, data, a.activation, a.rounding)


def check_outputs_path(out: Path, build_dir: Path, inputs: Path) -> None:
    """`qflow run --outputs` may name a new or existing file in an existing folder, but
    not the inputs it reads nor anything in the build folder (export replaces that folder
    whole, and its files are the build's own)."""
    if out.is_dir():
        raise ValueError(f"--outputs {out}: is a folder; give a file name (.npy)")
    parent = out.absolute().parent
    if not parent.exists():
        raise ValueError(f"--outputs {out}: folder {parent} does not exist")
    if not parent.is_dir():
        raise ValueError(f"--outputs {out}: {parent} is not a folder")
    target = out.resolve()
    if inputs.exists() and target == inputs.resolve():
        raise ValueError(f"--outputs {out}: is the --inputs file; give another name")
    if target.is_relative_to(build_dir.resolve()):
        raise ValueError(f"--outputs {out}: inside the build folder {build_dir}, whose files "
                         "belong to the build (and are replaced by the next export); give a "
                         "path outside it")


def cmd_run(a: argparse.Namespace) -> None:
    from flow import backends, golden
    from flow.inputs import command_codes
    from flow.ir import load

    check_outputs_path(Path(a.outputs), Path(a.build_dir), Path(a.inputs))
    model = load(Path(a.build_dir))
    codes = command_codes(model, a.inputs)
    acc = np.asarray(backends.run(a.backend, model, Path(a.build_dir), codes))
    y = golden.dequantize_output(model.output, acc)

    def save(path: Path) -> None:
        with open(path, "wb") as f:  # a file object: np.save would append .npy to a name
            np.save(f, y)

    write_with(Path(a.outputs), save)
    log.info("run: %s backend, %d samples -> %s", a.backend, len(codes), a.outputs)


def cmd_verify(a: argparse.Namespace) -> None:
    from flow import backends
    from flow.inputs import read_inputs
    from flow.ir import load
    from flow.verify import verify

    names = [b for b in (a.backends or "").split(",") if b]
    unknown = [b for b in names if b not in backends.names()]
    if unknown:  # before minutes of reference runs
        raise ValueError(f"--backends: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(backends.names())}")
    x = read_inputs(a.inputs, load(Path(a.build_dir))) if a.inputs else None
    r = verify(Path(a.build_dir), a.limit, names, x)
    if a.strict and not r["all_equal"]:
        raise SystemExit(1)


def cmd_check(a: argparse.Namespace) -> None:
    from flow.check import check_build

    check_build(Path(a.build_dir), a.limit)


def cmd_sweep(a: argparse.Namespace) -> None:
    from flow.report.sweep import sweep_command  # torch-heavy: imported only when used

    sweep_command(a)


def cmd_explore(a: argparse.Namespace) -> None:
    from flow.report.explore import explore

    explore(Path(a.config), Path(a.out), a.ray_address, a.max_points)


def parser() -> argparse.ArgumentParser:
    from flow import backends

    p = argparse.ArgumentParser(prog="qflow", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("train", help="quantization-aware training of a config")
    s.add_argument("config")
    s.add_argument("--out", help="build folder (default build/<name>)")
    s.add_argument("--resume", action="store_true", help="continue from checkpoint.pt")
    s.add_argument("--nproc", type=positive_int, help="processes on this machine: PyTorch DDP under "
                   "torchrun (gloo on CPU, NCCL on GPUs); batch_size is the global batch")
    s.add_argument("--nnodes", type=positive_int, default=1, help="machines taking part (with --nproc)")
    s.add_argument("--node-rank", type=int, default=0, help="this machine's index, 0..nnodes-1")
    s.add_argument("--master-addr", help="address of node 0 (several machines)")
    s.add_argument("--master-port", type=int, help="its port (default: free port, or 29500)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", help="checkpoint -> QONNX -> integer IR -> backends")
    s.add_argument("build_dir")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("compile", help="any QONNX or ONNX QDQ file -> integer IR -> backends")
    s.add_argument("model")
    s.add_argument("--out", required=True)
    s.add_argument("--target-cycles", type=positive_int, help="fold for at most this many cycles/frame")
    s.add_argument("--target-fps", type=positive_float, help="fold for this many frames per second")
    s.add_argument("--clock-mhz", type=positive_float, default=100.0)
    s.add_argument("--folding-preset", choices=["cnv-w1a1", "cnv-w2a2"],
                   help="finn-examples' folding for BNN-PYNQ's CNV (PE, SIMD per layer)")
    s.add_argument("--dataset", choices=["digits", "fashion-mnist", "idx"],
                   help="dataset whose test split verify/sim use")
    s.add_argument("--data-path", help="IDX folder for --dataset idx / fashion-mnist")
    s.add_argument("--activation", choices=["thresholds", "requant", "auto"], default="auto",
                   help="hidden activations as thresholds (exact), fixed-point "
                        "requantization, or auto (the default: requantization of 5-bit and "
                        "wider outputs whose float tail is affine, thresholds elsewhere)")
    s.add_argument("--rounding", choices=["half_even", "tflite"], default="half_even",
                   help="requantizations round once half to even (QONNX's Quant, the "
                        "default) or twice as TFLite's MultiplyByQuantizedMultiplier")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="run a backend on float inputs (.npy) -> outputs (.npy)")
    s.add_argument("build_dir")
    s.add_argument("--backend", default="golden", choices=backends.names())
    s.add_argument("--inputs", required=True)
    s.add_argument("--outputs", required=True)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("verify", help="golden vs qonnx executor, Brevitas and backends")
    s.add_argument("build_dir")
    s.add_argument("--limit", type=positive_int, help="use only the first N samples")
    s.add_argument("--inputs", help="float inputs (.npy) instead of the IR's dataset")
    s.add_argument("--backends", help="comma-separated backends to check too, e.g. hls,firmware")
    s.add_argument("--strict", action="store_true", help="exit 1 unless every sample agrees")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("check", help="every check: verify, RTL simulation, HLS C simulation, "
                                     "firmware (host and RV32), against the golden model")
    s.add_argument("build_dir")
    s.add_argument("--limit", type=positive_int, help="use only the first N test samples")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("sweep", help="post-training bit-width sweep of a config's float model")
    s.add_argument("config")
    s.add_argument("--out", help="build folder (default build/<name>)")
    s.add_argument("--bits", default="1..8", help="bit widths: a range 1..8 or a list 2,4,8")
    s.add_argument("--quick", action="store_true",
                   help="few float epochs and calibration batches (smoke test)")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("explore", help="design-space exploration on Ray: bit widths x folding "
                                       "targets, each point trained, built and measured")
    s.add_argument("config")
    s.add_argument("--out", required=True, help="folder for explore.json, explore.png, points/")
    s.add_argument("--ray-address", help="a Ray cluster (default: a local Ray)")
    s.add_argument("--max-points", type=positive_int, help="run only the first N points")
    s.set_defaults(func=cmd_explore)

    for mod in plugins():
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        register: RegisterCli = m.register_cli
        register(sub)
    return p


def error_line(e: Exception) -> str:
    """The one line a user sees; the OS's own errors (whose str() is "[Errno 30] Read-only
    file system: 'path'") as "PATH: Read-only file system"."""
    if isinstance(e, OSError) and e.strerror:
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        return f"{where}: {e.strerror}" if where else e.strerror
    return str(e)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # our stages log at INFO; libraries (onnxscript, onnx_ir, ...) only when they warn
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    logging.getLogger("qflow").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        # a command on a build holds its lock: one writer at a time, and only in a qflow build
        with writing(args.build_dir) if getattr(args, "build_dir", None) else nullcontext():
            args.func(args)
    except KeyboardInterrupt:
        hint = " (`qflow train --resume` continues from the last epoch)" \
            if args.command == "train" else ""
        print(f"qflow: interrupted{hint}", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        # the flow's errors name the file, node or key, and so does the OS's (a read-only
        # or full disk, a name too long): a traceback adds nothing for a user
        if args.verbose:
            raise
        print(f"qflow: error: {error_line(e)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
