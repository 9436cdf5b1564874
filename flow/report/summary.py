"""The report's first screen: every headline figure, read from the build's result files.

Accuracy (train.json, verify.json); the agreement of every execution with the golden model
(verify.json, sim.json, hls.json, firmware.json, and check.json's skipped checks), and each
requantized layer's measured difference from the float graph (verify.json);
hardware per flow and board (synth.json, board/*/board.json); throughput; firmware sizes
and instructions; energy from the IR's cost model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flow.backends import registry
from flow.report.markdown import fmt, table
from flow.results import read_json, read_result
from flow.synth.nextpnr import PNR_DEVICES

# nextpnr's cells for the LUT, FF, BRAM and DSP columns, per family (an iCE40 logic cell
# holds a LUT4 and its flip-flop, so FF has no column of its own there)
PNR_CELLS: dict[str, tuple[str | None, ...]] = {
    "ecp5": ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"),
    "ice40": ("ICESTORM_LC", None, "ICESTORM_RAM", "ICESTORM_DSP"),
}
# the agreement matrix's rows before the golden model's: (execution, result file, its
# agreement key, the check writing it); each backend's targets follow (executions())
VERIFIED = (
    ("Brevitas forward (integers at every layer)", "verify.json", "brevitas_forward", "verify"),
    ("qonnx executor (float graph)", "verify.json", "qonnx_executor", "verify"),
    ("onnxruntime (the ONNX QDQ file as given)", "verify.json", "onnxruntime", "verify"),
)


def executions() -> list[tuple[str, str, str, str]]:
    """Each checked backend's run targets as rows of the agreement matrix, as they register."""
    return [(target.execution, check.result, target.key, check.name)
            for backend, check in registry.checked() for target in backend.targets]


GUARDED = (AttributeError, TypeError, KeyError, ValueError, IndexError)


def guarded(title: str, section: Callable[[], list[str] | None]) -> list[str]:
    """A section's lines; when a result file holds unexpected content (a field of another
    type: hand-edited, or from another tool) the section becomes one line saying so."""
    try:
        return section() or []
    except GUARDED as e:
        return [f"*{title}: a result file holds unexpected content ({type(e).__name__}: "
                f"{e}); re-run the command that writes it.*", ""]


def summary_lines(build_dir: Path, fingerprint: str | None) -> list[str]:
    """The first screen; `fingerprint` is the build's IR's (results of another are stale)."""
    build_dir = Path(build_dir)
    unused: dict[str, str] = {}  # result files present but not usable: why

    def doc(name: str) -> dict[str, Any]:
        if name == "train.json":  # made before the IR: no fingerprint
            d, why = read_json(build_dir / name, want_object=True)
        else:
            d, why = read_result(build_dir, name, fingerprint)
        if d is None and why != "missing":
            unused[name] = str(why)
        return d or {}

    train, verify, sim, fw, synth, check = (doc(f) for f in (
        "train.json", "verify.json", "sim.json", "firmware.json", "synth.json", "check.json"))
    checks = check.get("checks") or {}
    lines = ["## Summary", ""]
    lines += guarded("Test accuracy", lambda: accuracy(train, verify))
    lines += guarded("Agreement", lambda: [
        "**Agreement with the golden model** (exact samples / total)", "",
        *table(["execution", "exact", "verdict"], agreement_matrix(build_dir, doc, checks))])
    if unused:
        lines += ["Result files not used: " + "; ".join(f"`{n}`: {why}" for n, why in
                                                         unused.items()) + ".", ""]
    lines += guarded("Requantized layers", lambda: requantization(verify.get("requantization") or {}))
    lines += guarded("Hardware", lambda: hardware(build_dir, synth))
    lines += guarded("Throughput and firmware", lambda: throughput(sim, synth, fw))
    return lines + energy(build_dir)


def accuracy(train: dict[str, Any], verify: dict[str, Any]) -> list[str]:
    """Test accuracy of each model with the number of samples it was measured on."""
    acc = verify.get("accuracy") or {}
    n_train, n_verify = train.get("test_samples"), verify.get("samples")
    rows = [[name, v, n] for name, v, n in (
        ("float32 (train.json)", train.get("float_test_accuracy"), n_train),
        (f"quantized, Brevitas ({train.get('mode', 'qat')})", train.get("test_accuracy"), n_train),
        ("quantized, golden integer model (verify.json)", acc.get("golden"), n_verify),
        ("quantized, float graph by qonnx's executor (verify.json)", acc.get("qonnx_executor"),
         n_verify),
        ("quantized, onnxruntime on the QDQ file (verify.json)", acc.get("onnxruntime"),
         n_verify))
        if v is not None]
    return ["**Test accuracy**", ""] + (
        table(["model", "accuracy", "test samples"], rows) if rows
        else ["*no train.json or verify.json*", ""])


def agreement_matrix(build_dir: Path, doc: Callable[[str], dict[str, Any]],
                     checks: dict[str, Any]) -> list[list[Any]]:
    def row(name: str, file: str, key: str, check: str) -> list[Any]:
        return agreement_row(name, doc(file), key, checks.get(check) or {},
                             f"qflow {check} {build_dir}")

    # onnxruntime is a reference only of builds compiled from ONNX QDQ files
    verified = [r for r in VERIFIED
                if r[2] != "onnxruntime" or r[2] in (doc(r[1]).get("agreement") or {})]
    return [*(row(*r) for r in verified), ["golden integer model", "reference", ""],
            *(row(*r) for r in executions())]


def throughput(sim: dict[str, Any], synth: dict[str, Any], fw: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    pnr = synth.get("pnr") or {}
    expected = synth.get("expected") or {}
    ii = sim.get("initiation_interval_cycles") or expected.get("initiation_interval")
    lat = sim.get("latency_cycles") or expected.get("latency")
    fmax = pnr.get("fmax_mhz")
    if ii:
        measured = "measured in simulation" if sim else "predicted by the folding"
        line = f"Initiation interval {ii} cycles, latency {fmt(lat)} cycles ({measured})"
        if isinstance(fmax, (int, float)) and fmax > 0:
            line += (f"; at Fmax {fmax:.1f} MHz: {fmax * 1e6 / ii:,.0f} frames/s, latency "
                     f"{(lat or 0) / fmax:.2f} µs")
        lines += [f"**Throughput**: {line}.", ""]
    sizes = fw.get("sizes") or {}
    if fw.get("instructions_per_inference"):
        lines += [f"**Firmware** ({sizes.get('chip', 'esp32')}): flash "
                  f"{fmt(sizes.get('flash_bytes_needed'))} B (constants "
                  f"{sizes.get('constant_bytes_per_weight', 0):.2f} B per weight), RAM "
                  f"{fmt(sizes.get('ram_bytes_needed'))} B (arena {fmt(sizes.get('arena_bytes'))}"
                  f" B), {fw['instructions_per_inference']:,} RV32IMC instructions per inference "
                  f"(~{fmt(fw.get('estimated_latency_us_at_160mhz'))} µs at 160 MHz).", ""]
    return lines


def agreement_row(name: str, doc: dict[str, Any], key: str, check: dict[str, Any],
                  command: str) -> list[Any]:
    """[execution, exact samples / total, verdict] from a check's result file."""
    if check.get("status") == "skipped":
        return [name, "skipped", check.get("reason")]
    skipped = (doc.get("skipped") or {}).get(key)  # one target of a check (RV32 without tools)
    if skipped:
        return [name, "skipped", skipped]
    a = (doc.get("agreement") or {}).get(key)
    if not isinstance(a, dict):
        if doc and key == "brevitas_forward":
            return [name, "—", "no Brevitas checkpoint in this build (compiled)"]
        return [name, "not run", f"`{command}`"]
    total = a.get("total", doc.get("samples"))
    if a.get("equal") == total:
        verdict = "equal"
    elif a.get("explained"):
        verdict = "explained: requantization and float32 rounding, measured (below)"
    else:
        verdict = f"DIFFERS: samples {fmt(a.get('differing_samples'))}"
    return [name, f"{a.get('equal')} / {total}", verdict]


def requantization(measured: dict[str, Any]) -> list[str]:
    """Each requantized layer against the float graph (verify.json's `requantization`): the
    largest difference in output steps and its bound, the share of samples whose codes all
    agree, the differing outputs (with power-of-two scales: at ties / by double rounding),
    and the argmax agreement."""
    layers = measured.get("layers") or {}
    if not layers and "error" not in measured:
        return []
    rows = [[name, "yes" if m.get("power_of_two") else "no",
             f"{fmt(m.get('max_step_difference'))} (≤ {fmt(m.get('step_bound'))})",
             f"{fmt(m.get('equal_share'))} ({fmt(m.get('equal_samples'))} / {fmt(m.get('samples'))})",
             f"{fmt(m.get('differing_outputs'))} / {fmt(m.get('outputs'))}"
             + (f" ({fmt(m.get('tie_outputs'))} ties, {fmt(m.get('double_rounding_outputs'))} "
                "double rounding)" if m.get("power_of_two") else "")]
            for name, m in layers.items()]
    lines = ["**Requantized layers against the float graph** (on the executor's own inputs to "
             "each layer)", ""]
    if rows:
        lines += table(["layer", "power-of-two scales", "max difference (steps)",
                        "samples equal", "outputs differing"], rows)
    if "error" in measured:
        lines += [f"*not measured layer by layer: {measured['error']}*", ""]
    lines += [f"Argmax agreement with the float graph: {fmt(measured.get('argmax_equal'))} / "
              f"{fmt(measured.get('samples'))} test samples.", ""]
    return lines


def pnr_row(label: str, family: str, utilization: dict[str, Any], fmax: Any) -> list[Any]:
    used = [(utilization.get(c) or {}).get("used", "—") if c else "—"
            for c in PNR_CELLS.get(family, (None,) * 4)]
    return [label, *used, fmax]


def hardware(build_dir: Path, synth: dict[str, Any]) -> list[str]:
    """LUT/FF/BRAM/DSP and Fmax per synthesis flow and per board bitstream."""
    rows: list[list[Any]] = []
    x = synth.get("xilinx") or {}
    if x.get("total"):
        t = x["total"]
        rows.append([f"Yosys synth_xilinx ({x.get('part')})", t.get("lut"), t.get("ff"),
                     t.get("bram36"), t.get("dsp"), "—"])
    pnr = synth.get("pnr") or {}
    if pnr:
        rows.append(pnr_row(f"nextpnr {pnr.get('device')}", str(pnr.get("family")),
                            pnr.get("utilization") or {}, pnr.get("fmax_mhz")))
    boards = []
    for path in sorted((build_dir / "board").glob("*/board.json")):
        b, _ = read_json(path, want_object=True)
        if not b or not b.get("utilization") or b.get("device") not in PNR_DEVICES:
            continue
        rows.append(pnr_row(f"board {b.get('board_title', b.get('board'))} ({b['device']})",
                            PNR_DEVICES[b["device"]].family, b["utilization"],
                            b.get("fmax_mhz")))
        boards.append(f"{b.get('board')}: {b.get('clock_mhz')} MHz board clock "
                      f"{'met' if b.get('timing_met') else 'NOT met'}, bitstream "
                      f"`board/{path.parent.name}/{b.get('bitstream')}`")
    lines = ["**Hardware**", ""] + (
        table(["flow", "LUT", "FF", "BRAM", "DSP", "Fmax (MHz)"], rows) if rows else
        [f"*not synthesized: run `qflow synth {build_dir}`*", ""])
    return lines + (["Boards: " + "; ".join(boards) + ".", ""] if boards else [])


def energy(build_dir: Path) -> list[str]:
    """Energy per inference from the IR's cost model (nothing without a valid IR)."""
    from flow.ir import load as load_ir
    from flow.report.cost import cost_model

    try:
        c = cost_model(load_ir(build_dir))
    except (OSError, ValueError):
        return []
    q, f = c["quantized"]["total"], c["float32"]["total"]
    return [f"**Energy** (45 nm model): {q['total_pj'] / 1000:.3g} nJ per inference quantized "
            f"vs {f['total_pj'] / 1000:.3g} nJ float32 "
            f"({c['ratio_float32_over_quantized']['total_pj']:.3g}x).", ""]
