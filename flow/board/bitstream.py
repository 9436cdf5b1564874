"""A model's bitstream for a board: the board top (shell.py) through Yosys, nextpnr with the
board's pins and clock, and icepack / ecppack, all from the YoWASP packages. Everything
lands in build_dir/board/<board>/, written as a whole: the bitstream, the board top and
constraints, the tools' logs, board.json (utilisation, Fmax against the board clock, the
protocol) and timing.txt. A design that does not fit the device is an error naming the
resource, the need and the capacity; the folder is then left as it was."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from flow.atomic import replace_dir, write_json, write_text
from flow.board.boards import RESOURCES, Board
from flow.board.protocol import protocol_for
from flow.board.shell import hw_sources, write_shell
from flow.fingerprint import write_stamp
from flow.ir import load
from flow.synth import PNR_DEVICES, Session, flat_cells, module_cells, pnr_summary, tool_path

DEFAULT_TIMEOUT = 3600.0


class BoardFitError(RuntimeError):
    """The design needs more of a resource than the board's device has."""


def board_dir(build_dir: Path, board: Board) -> Path:
    return Path(build_dir) / "board" / board.name


def fit_message(model_name: str, board: Board, utilization: dict[str, dict[str, int]]) -> str:
    """"needs N <resource> (what it is), the <chip> has M" for each resource over capacity;
    empty when everything fits."""
    over = [f"needs {u['used']} {k} ({RESOURCES.get(k, 'cells')}), the {board.chip} has "
            f"{u['available']}" for k, u in utilization.items() if u["used"] > u["available"]]
    if not over:
        return ""
    return f"{model_name} does not fit the {board.title}: " + "; ".join(over)


def timing_text(r: dict[str, Any]) -> str:
    util = r.get("utilization", {})
    lines = [f"{r['top']} on the {r['board_title']} ({r['chip']}), {r['clock_mhz']:g} MHz clock",
             f"Fmax {r['fmax_mhz']} MHz: the board clock is "
             f"{'met' if r['timing_met'] else 'NOT met'}"]
    cp = r.get("critical_path")
    if cp:
        lines.append(f"critical path {cp['delay_ns']} ns ({cp['logic_levels']} logic levels, "
                     f"{cp['routing_ns']} ns routing): {cp['from']} -> {cp['to']}")
    lines.append("utilisation:")
    lines += [f"  {k:<14} {u['used']:>6} / {u['available']:<6} {RESOURCES.get(k, '')}"
              for k, u in util.items() if u["used"]]
    lines.append(f"UART {r['baud']} baud ({r['params']['CLKS_PER_BIT']} clocks a bit); "
                 f"request {r['protocol']['request_bytes']} bytes, reply "
                 f"{r['protocol']['reply_bytes']} bytes")
    lines.append(f"bitstream {r['bitstream']} in {r['seconds']['total']:.0f} s")
    return "\n".join(lines) + "\n"


def build_bitstream(build_dir: Path, board: Board, baud: int,
                    timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Build build_dir/board/<board>/ with the bitstream; returns board.json's content.
    Raises BoardFitError when the design does not fit, RuntimeError when a tool fails."""
    build_dir = Path(build_dir).resolve()
    model = load(build_dir)
    folder = board_dir(build_dir, board)
    dev = PNR_DEVICES[board.device]
    result: dict[str, Any] = {"board": board.name, "board_title": board.title,
                              "chip": board.chip, "device": board.device,
                              "clock_mhz": board.clock_mhz, "baud": baud,
                              "protocol": protocol_for(model).describe()}
    t0 = time.monotonic()

    def build(tmp: Path) -> None:
        design = write_shell(model, build_dir, board, baud, tmp)
        result.update(top=design.top, params=design.params)
        s = Session(design.manifest(), tmp, build_dir / "rtl", timeout)
        netlist = tmp / "netlist.json"
        synth = {"ice40": "synth_ice40 -dsp", "ecp5": "synth_ecp5"}[dev.family]
        syn = s.yosys(f"yosys {synth}", "synth", [
            f'{synth} -top {design.top} -json "{netlist}"',
            f'tee -q -o "{tmp / "synth_stat.json"}" stat -json'], ecp5=dev.family == "ecp5")
        if not syn.ok:
            raise RuntimeError(f"{board.name}: Yosys failed: " + "; ".join(syn.errors[:3]))
        placed = tmp / ("placed.asc" if dev.family == "ice40" else "placed.config")
        report = tmp / "nextpnr_report.json"
        args = [tool_path(f"nextpnr-{dev.family}"), *dev.args, "--json", str(netlist),
                f"--{'pcf' if dev.family == 'ice40' else 'lpf'}", str(tmp / design.constraints),
                f"--{'asc' if dev.family == 'ice40' else 'textcfg'}", str(placed),
                "--freq", f"{board.clock_mhz:g}", "--timing-allow-fail", "--seed", "1",
                "--report", str(report), "--detailed-timing-report"]
        pnr = s.run(f"nextpnr-{dev.family}", args, "nextpnr.log")
        log_text = (tmp / "nextpnr.log").read_text(errors="replace")
        rep = json.loads(report.read_text()) if pnr.ok and report.exists() else None
        summary = pnr_summary(log_text, rep, s.cwd)
        misfit = fit_message(model.name, board, summary["utilization"])
        if misfit:
            raise BoardFitError(misfit)
        if not pnr.ok:
            raise RuntimeError(f"{board.name}: nextpnr failed: " + "; ".join(pnr.errors[:3]))
        bitstream = f"{design.top}.{board.bitstream_ext}"
        pack = s.run(f"{'icepack' if dev.family == 'ice40' else 'ecppack'}",
                     [tool_path("icepack" if dev.family == "ice40" else "ecppack"),
                      str(placed), str(tmp / bitstream)], "pack.log")
        if not pack.ok:
            raise RuntimeError(f"{board.name}: packing the bitstream failed: "
                               + "; ".join(pack.errors[:3]))
        placed.unlink()
        netlist.unlink()
        if rep:  # the per-net table only serves critical_path(); it is large
            rep.pop("detailed_net_timings", None)
            write_json(report, rep)
        cells = flat_cells(module_cells(json.loads((tmp / "synth_stat.json").read_text())),
                           design.top)
        result.update(
            bitstream=bitstream, fits=True,
            utilization=summary["utilization"], fmax_mhz=summary["fmax_mhz"],
            timing_met=summary["fmax_mhz"] is not None and summary["fmax_mhz"] >= board.clock_mhz,
            critical_path=summary.get("critical_path"),
            lut4=cells.get("SB_LUT4", 0) + cells.get("LUT4", 0),
            seconds={"synth": syn.seconds, "pnr": pnr.seconds, "pack": pack.seconds,
                     "total": round(time.monotonic() - t0, 1)})
        write_json(tmp / "board.json", result)
        write_stamp(tmp, model, hw_sources())
        write_text(tmp / "timing.txt", timing_text(result))

    replace_dir(folder, build)
    return result
