#!/usr/bin/env bash
# Lint the hand-written hardware sources; exits non-zero on any warning.
# Sections: rtl/ (Verilator -Wall), hls/ (g++ -Werror), firmware/ (gcc and riscv gcc -Werror).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
status=0

# ---- rtl: verilator --lint-only -Wall, every module as its own top (default parameters);
# the blocks sit in rtl/'s groups (rtl/README.md), the package at rtl/ itself; rtl/vendor/
# (FPGA primitives Verilator does not have) is left out. Packages (*_pkg.sv) go first on
# every command line: -y finds modules, not packages
VROOT=$("$VENV/bin/python" -c 'import pathlib, verilator; print(pathlib.Path(verilator.__file__).parent)')
export VERILATOR_ROOT=$VROOT PATH=$VROOT/bin:$PATH
RTL_GROUPS=()
for d in "$ROOT"/rtl/*/; do
  [[ $(basename "$d") == vendor ]] || RTL_GROUPS+=("${d%/}")
done
YDIRS=() FILES=()
for d in "$ROOT/rtl" "${RTL_GROUPS[@]}"; do
  YDIRS+=(-y "$d")
  for f in "$d"/*.sv; do [[ -f $f ]] && FILES+=("$f"); done
done
PKGS=("$ROOT"/rtl/*_pkg.sv)
for f in "${FILES[@]}"; do
  top=$(basename "$f" .sv)
  rel=${f#"$ROOT"/}
  srcs=("${PKGS[@]}")
  [[ $top == *_pkg ]] || srcs+=("$f")
  if ! out=$(verilator --lint-only -Wall "${YDIRS[@]}" --top-module "$top" "${srcs[@]}" 2>&1); then
    echo "lint_hw: $rel:"; echo "$out"; status=1
  elif grep -q "%Warning" <<<"$out"; then
    echo "lint_hw: $rel:"; echo "$out"; status=1
  fi
done

# ---- hls: every header compiles alone, C++14, warnings as errors
for f in "$ROOT"/hls/*.hpp; do
  if ! out=$(printf '#include "%s"\n' "$(basename "$f")" |
             g++ -std=c++14 -Wall -Wextra -Werror -fsyntax-only -I "$ROOT/hls" -x c++ - 2>&1); then
    echo "lint_hw: hls/$(basename "$f"):"; echo "$out"; status=1
  fi
done

# ---- firmware: C99 with host gcc and, when installed, riscv64-unknown-elf-gcc for RV32IMC.
# qnn_runner.c includes the generated model.h and is compiled with every generated model.
RV=(riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32 --specs=picolibc.specs)
for f in "$ROOT"/firmware/*.c; do
  [ "$(basename "$f")" = qnn_runner.c ] && continue
  compilers=("gcc")
  command -v riscv64-unknown-elf-gcc >/dev/null && compilers+=("${RV[*]}")
  for cc in "${compilers[@]}"; do
    # shellcheck disable=SC2086  # the RV32 entry is a command with its flags
    if ! out=$($cc -std=c99 -Wall -Wextra -Werror -O2 -I "$ROOT/firmware" -c "$f" -o /dev/null 2>&1); then
      echo "lint_hw: firmware/$(basename "$f") ($cc):"; echo "$out"; status=1
    fi
  done
done

exit $status
