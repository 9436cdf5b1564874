"""Yosys: the synth_xilinx scripts and their statistics, counted as Vivado counts them
(see flow.synth), per module, per manifest layer and against a part's capacity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flow.synth.tools import Session

# Vivado LUT sites per LUT-as-memory primitive (7-series and UltraScale libraries)
LUTRAM_SITES = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM512X1S": 8, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
    "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
}
SRL_SITES = {"SRL16": 1, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
LOGIC_LUTS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}


@dataclass(frozen=True)
class XilinxPart:
    family: str
    lut: int
    ff: int
    bram36: int
    dsp: int


XILINX_PARTS = {
    "xc7z020": XilinxPart("xc7", 53200, 106400, 140, 220),  # Pynq-Z1 / Pynq-Z2
    "xc7z010": XilinxPart("xc7", 17600, 35200, 60, 80),
    "xc7a35t": XilinxPart("xc7", 20800, 41600, 50, 90),
    "xc7a100t": XilinxPart("xc7", 63400, 126800, 135, 240),
    "xc7z045": XilinxPart("xc7", 218600, 437200, 545, 900),  # ZC706 (FINN paper)
}


def bare_name(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def module_cells(stat: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Local cell counts by type per module, from `stat -json` (submodules appear as types)."""
    return {bare_name(m): {bare_name(t): int(n) for t, n in v["num_cells_by_type"].items()}
            for m, v in stat["modules"].items()}


def flat_cells(mods: dict[str, dict[str, int]], top: str) -> dict[str, int]:
    """Primitive cell counts of `top` with its submodules expanded."""
    memo: dict[str, dict[str, int]] = {}

    def walk(m: str) -> dict[str, int]:
        if m not in memo:
            acc: dict[str, int] = {}
            for t, n in mods[m].items():
                sub = walk(t) if t in mods else {t: 1}
                for k, v in sub.items():
                    acc[k] = acc.get(k, 0) + n * v
            memo[m] = acc
        return memo[m]

    return dict(sorted(walk(bare_name(top)).items()))


def xilinx_resources(cells: dict[str, int]) -> dict[str, Any]:
    """Vivado-style utilisation figures from 7-series primitive counts (see module doc)."""
    n = cells.get
    lut_logic = sum(n(t, 0) for t in LOGIC_LUTS)
    lutram = sum(c * LUTRAM_SITES[t] for t, c in cells.items() if t in LUTRAM_SITES)
    srl = sum(c * SRL_SITES[t] for t, c in cells.items() if t in SRL_SITES)
    ramb36 = n("RAMB36E1", 0) + n("FIFO36E1", 0) + n("RAMB36E2", 0)
    ramb18 = n("RAMB18E1", 0) + n("FIFO18E1", 0) + n("RAMB18E2", 0)
    return {
        "lut": lut_logic + lutram + srl, "lut_logic": lut_logic, "lut_as_memory": lutram + srl,
        "lutram": lutram, "srl": srl,
        "ff": sum(c for t, c in cells.items() if t.startswith(("FD", "LD"))),
        "bram36": ramb36 + ramb18 / 2, "bram18": 2 * ramb36 + ramb18,
        "ramb36": ramb36, "ramb18": ramb18,
        "dsp": n("DSP48E1", 0) + n("DSP48E2", 0),
        "carry4": n("CARRY4", 0), "muxf7": n("MUXF7", 0), "muxf8": n("MUXF8", 0),
        "cells": {t: c for t, c in cells.items() if not t.startswith("$")},
    }


def xilinx_fit(res: dict[str, Any], part: str) -> list[str]:
    """Reasons the figures exceed the part (empty: fits)."""
    cap = XILINX_PARTS[part]
    over = [("LUTs", res["lut"], cap.lut), ("FFs", res["ff"], cap.ff),
            ("BRAM36 tiles", res["bram36"], cap.bram36), ("DSPs", res["dsp"], cap.dsp)]
    return [f"{what}: {used:g} > {avail} on {part}" for what, used, avail in over
            if used > avail]


def find_instance(inst_json: dict[str, Any], top: str, path: str) -> str | None:
    """Module type of the hierarchical instance `path` (dots between levels; a generate
    block's dotted name is also tried as a single cell name) below `top`."""
    mods = {bare_name(m): v.get("cells", {}) for m, v in inst_json["modules"].items()}

    def walk(mod: str, rest: str) -> str | None:
        cells = mods.get(mod, {})
        if rest in cells:
            return bare_name(cells[rest]["type"])
        parts = rest.split(".")
        for i in range(len(parts) - 1, 0, -1):  # longest cell name first
            head, tail = ".".join(parts[:i]), ".".join(parts[i:])
            if head in cells:
                found = walk(bare_name(cells[head]["type"]), tail)
                if found:
                    return found
        return None

    return walk(bare_name(top), path)


def xilinx_script(s: Session, family: str, flat: bool) -> list[str]:
    tag, top = ("flat" if flat else "hier"), s.manifest["top"]
    lines = [  # -noiopad: the accelerator sits inside a shell, as in FINN's out-of-context runs
        f"synth_xilinx -family {family} -noiopad -top {top}" + (" -flatten" if flat else ""),
        f'tee -q -o "{s.out / f"xilinx_{tag}_stat.json"}" stat -json']
    if not flat:
        # the layer instances' module types (the top's cells and any parameterized ones)
        lines += [f"select {top}/c:* */t:$paramod*",
                  f'write_json -selected -noscopeinfo "{s.out / "xilinx_hier_cells.json"}"',
                  "select -clear"]
    return lines


def layer_rows(m: dict[str, Any], mods: dict[str, dict[str, int]], inst: dict[str, Any],
               total: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per manifest layer, the figures of the module under its instance (`mods` from
    module_cells, `inst` from the hierarchy's write_json); and "other", what the total has
    beyond the layers (FIFOs, glue)."""
    rows: list[dict[str, Any]] = []
    used: dict[str, float] = {"lut": 0, "ff": 0, "bram36": 0, "dsp": 0}
    for layer in m.get("layers", []):
        module = find_instance(inst, m["top"], layer["instance"])
        row = {k: layer.get(k) for k in ("name", "instance", "pe", "simd", "cycles")}
        row["module"] = module
        if module is None:
            row["error"] = f"instance {layer['instance']!r} not found below {m['top']}"
        else:
            r = xilinx_resources(flat_cells(mods, module))
            row.update({k: v for k, v in r.items() if k != "cells"})
            for k in used:
                used[k] += r[k]
        rows.append(row)
    other = {k: total[k] - used[k] for k in used}
    return rows, other


def xilinx_run(s: Session, part: str) -> dict[str, Any]:
    """The hierarchy-preserving run: totals, fit against the part, per-layer figures."""
    family, m, out = XILINX_PARTS[part].family, s.manifest, s.out
    res: dict[str, Any] = {"part": part, "family": family, "seconds": {}}
    hier = s.yosys("yosys synth_xilinx (hier)", "xilinx_hier", xilinx_script(s, family, False))
    res["seconds"]["hier"] = hier.seconds
    if not hier.ok:
        return {**res, "ok": False, "errors": hier.errors}
    mods = module_cells(json.loads((out / "xilinx_hier_stat.json").read_text()))
    inst = json.loads((out / "xilinx_hier_cells.json").read_text())
    res["total"] = xilinx_resources(flat_cells(mods, m["top"]))
    res["capacity"] = XILINX_PARTS[part].__dict__
    res["fit_reasons"] = xilinx_fit(res["total"], part)
    res["fits"] = not res["fit_reasons"]
    res["ok"] = True
    res["layers"], res["other"] = layer_rows(m, mods, inst, res["total"])
    return res


def xilinx_flat_run(s: Session, part: str) -> dict[str, Any]:
    """The flattened run, for comparison only (its failure is noted, not an error)."""
    flat = s.yosys("yosys synth_xilinx (flat)", "xilinx_flat",
                   xilinx_script(s, XILINX_PARTS[part].family, True))
    if not flat.ok:
        return {"flat_errors": flat.errors, "flat_seconds": flat.seconds}
    stat = json.loads((s.out / "xilinx_flat_stat.json").read_text())
    total = xilinx_resources(flat_cells(module_cells(stat), s.manifest["top"]))
    return {"flat_total": {k: v for k, v in total.items() if k != "cells"},
            "flat_seconds": flat.seconds}
