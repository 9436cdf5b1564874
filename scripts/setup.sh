#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: a venv with qflow and its tools, and (as
# root) the Debian packages the firmware flow needs. Without root it says what is missing.
set -euo pipefail
VENV=${1:-.venv}
PY=${PYTHON:-python3}

DEBS=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc dataset-fashion-mnist)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not root: cannot install ${missing[*]}."
    echo "setup: still works: train, export, compile, golden/verify, RTL sim, synth, HLS, host firmware."
    echo "setup: needs them: firmware-rv32 (gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf,"
    echo "       qemu-system-misc) and the Fashion-MNIST configs (dataset-fashion-mnist)."
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first, pinned: the CPU build lies on disk; a looser request would fetch a CUDA build
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -e '.[dev,distributed]'
"$VENV/bin/python" - <<'PY'
import onnx, torch
assert torch.__version__.startswith("2.13.0") and "+cpu" in torch.__version__, torch.__version__
# onnxruntime (qonnx's executor) rejects IR version 14, written by onnx >= 1.21
assert onnx.IR_VERSION <= 13, f"onnx {onnx.__version__} writes IR {onnx.IR_VERSION}"
import ray  # the distributed extra (qflow explore); it must not have replaced torch
print(f"setup: ok (torch {torch.__version__}, onnx {onnx.__version__}, IR {onnx.IR_VERSION})")
PY

# ---- HLS: Xilinx's open ap_int.h / hls_stream.h for C simulation --------------------------
# The hls4ml wheel ships them (Apache-2.0) under hls4ml/templates/vivado/ap_types/; only that
# folder and the wheel's LICENSE are extracted, to $VENV/share/qflow/ap_types (hls4ml is not
# installed). `qflow hls` then simulates with them by default (flow.backends.hls.vendor);
# without them it uses qflow's built-in stand-ins.
if [ ! -f "$VENV/share/qflow/ap_types/ap_int.h" ]; then
  wheels=$(mktemp -d)
  if "$VENV/bin/python" -m pip download -q --no-deps -d "$wheels" hls4ml >/dev/null 2>&1; then
    "$VENV/bin/python" -c 'import sys; from flow.backends.hls.vendor import main; main(sys.argv[1:])' \
      "$wheels"/hls4ml-*.whl "$VENV/share/qflow/ap_types"
  else
    echo "setup: no hls4ml wheel on the package index: HLS C simulation uses the fallback types"
  fi
  rm -rf "$wheels"
fi
