"""Xilinx's open ap_int.h / hls_stream.h (Apache-2.0) for C simulation, beside the
built-in stand-ins of hls/qflow_fallback.hpp.

They ship in the hls4ml wheel (hls4ml/templates/vivado/ap_types/); `scripts/setup.sh`
extracts that folder alone, with the wheel's license, into <venv>/share/qflow/ap_types
(`extract`), without installing hls4ml. The C simulation then uses them by default:

    choice (csim's `vendor_include`, else $QFLOW_HLS_TYPES, else "auto"):
      "auto"      $XILINX_HLS/include (Vitis' own) or <venv>/share/qflow/ap_types, the
                  first that holds ap_int.h; the fallback types when neither does
      "fallback"  the built-in stand-ins
      a folder    ap_int.h / hls_stream.h from it

`main([HLS4ML_WHEEL, DEST])` is what setup.sh runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path

from flow.atomic import replace_dir

ENV = "QFLOW_HLS_TYPES"
AP_TYPES = Path(sys.prefix) / "share" / "qflow" / "ap_types"
WHEEL_FOLDER = "hls4ml/templates/vivado/ap_types/"
HEADERS = ("ap_int.h", "hls_stream.h")


def has_headers(folder: Path) -> bool:
    return all((folder / h).is_file() for h in HEADERS)


def installed() -> Path | None:
    """Vitis' include folder ($XILINX_HLS/include), else the venv's extracted copy."""
    folders = [Path(os.environ["XILINX_HLS"]) / "include"] if os.environ.get("XILINX_HLS") else []
    return next((f for f in [*folders, AP_TYPES] if has_headers(f)), None)


def resolve(choice: str | Path | None = None) -> Path | None:
    """The include folder of the vendor headers to simulate with, or None for the fallback
    types (see the module's docstring for `choice`)."""
    choice = choice if choice is not None else os.environ.get(ENV) or "auto"
    if choice == "auto":
        return installed()
    if choice == "fallback":
        return None
    folder = Path(choice)
    if not has_headers(folder):
        raise FileNotFoundError(f"{folder}: no {' / '.join(HEADERS)} (expected Vitis HLS' "
                                f"include folder or {AP_TYPES}; or set {ENV}=fallback)")
    return folder


def extract(wheel: Path, dest: Path = AP_TYPES) -> Path:
    """Write the wheel's ap_types/ folder to dest (atomically), with the wheel's LICENSE
    beside the headers and SOURCE naming the wheel and its sha256."""
    wheel = Path(wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(WHEEL_FOLDER) and not n.endswith("/")]
        licenses = [n for n in z.namelist()
                    if ".dist-info/" in n and Path(n).name in ("LICENSE", "LICENSE.txt")]
        if not names or not licenses:
            raise ValueError(f"{wheel}: no {WHEEL_FOLDER} or no LICENSE in its .dist-info")

        def build(tmp: Path) -> None:
            for n in names:
                target = tmp / n[len(WHEEL_FOLDER):]
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(n) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            (tmp / "LICENSE").write_bytes(z.read(licenses[0]))
            (tmp / "SOURCE").write_text(
                f"Xilinx's arbitrary-precision types and hls::stream (Apache-2.0, see LICENSE "
                f"and each file's header), from {WHEEL_FOLDER} of {wheel.name} "
                f"(sha256 {digest}), extracted by qflow (flow.backends.hls.vendor).\n")
            if not has_headers(tmp):
                raise ValueError(f"{wheel}: {WHEEL_FOLDER} lacks {' / '.join(HEADERS)}")

        return replace_dir(Path(dest), build)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="flow.backends.hls.vendor",
                                description="extract ap_int.h / hls_stream.h from an hls4ml wheel")
    p.add_argument("wheel", type=Path)
    p.add_argument("dest", type=Path, nargs="?", default=AP_TYPES)
    a = p.parse_args(argv)
    print(f"HLS vendor headers: {extract(a.wheel, a.dest)}")
