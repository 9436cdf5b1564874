"""The report stage: a build's figures measured, modelled and written up, after the other
stages have run; and `qflow report DIR`: DIR/report.md with its plots (DIR/figures/*.png)
and analysis.json.

Modules: summary (the first screen), markdown (tables, JSON rendered generically), plots
(figures), cost (the IR's cost and energy model, no torch), analysis (SQNR per layer of the
trained model), and the experiments whose figures the report shows: sweep (`qflow sweep`,
post-training quantization at 1..8 bits) and explore (`qflow explore`, the design space on
Ray). The check results the report reads stay at flow.results: every check writes them.

Every figure is read or computed from the build folder: train.json (accuracy), sweep.json
(bit-width sweep), checkpoint.pt + config.yaml (SQNR per layer), ir.json (cost model and
energy), and whatever verify.json, sim.json, synth.json, hls.json, firmware.json and
check.json hold. The first screen (Summary) leads with the answer: accuracy, agreement of
every execution with the golden model, hardware, throughput, firmware and energy; then
each stage's file rendered generically (every scalar field shown, unknown keys included);
long tables go to the appendix. A section whose files are missing is listed with the
command that fills it.
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flow.atomic import write_json, write_text
from flow.backends import registry
from flow.backends.registry import Section
from flow.buildfolder import writing
from flow.report.markdown import fmt, records, render_json, table
from flow.report.plots import figure, save_figure
from flow.report.summary import guarded, summary_lines
from flow.results import FINGERPRINT, current_fingerprint, read_json, read_result

log = logging.getLogger("qflow.report")

FIGURES = "figures"
# verify's result file, before each backend's sections (sections())
VERIFY_SECTION = Section("verify.json", "Verification: agreement with the golden model",
                         "qflow verify {dir}")


def sections() -> list[Section]:
    """The result files of the other stages, rendered whole: verify's, then each backend's
    check's and its stages' (flow.backends.registry)."""
    return [VERIFY_SECTION, *(s for backend in registry.BACKENDS for s in backend.sections)]


# ---- sections -----------------------------------------------------------------------------

class Report:
    def __init__(self, build_dir: Path) -> None:
        self.dir = Path(build_dir)
        self.lines: list[str] = []
        self.missing: list[list[str]] = []
        self.analysis: dict[str, Any] = {}
        self.appendix: list[str] = []  # long tables, after every section
        self.fingerprint = current_fingerprint(self.dir)  # results of another IR are stale

    def fig(self, name: str) -> Path:
        return self.dir / FIGURES / name

    def image(self, path: Path, alt: str) -> None:
        self.lines += [f"![{alt}]({path.relative_to(self.dir).as_posix()})", ""]

    def lack(self, section: str, needs: str, command: str, shown: bool = True) -> None:
        """A section that cannot be made: listed in the appendix with the command that
        fills it, and (`shown`) said in place."""
        self.missing.append([section, needs, f"`{command.format(dir=self.dir)}`"])
        if shown:
            self.lines += [f"*Not available: needs {needs}; run "
                           f"`{command.format(dir=self.dir)}`.*", ""]

    def guard(self, title: str, section: Callable[[], None]) -> None:
        """Add a section; a result file with unexpected content (fields of other types)
        costs that section, said in its place, never the report."""
        start = len(self.lines)
        problem = guarded(title, section)
        if problem:
            del self.lines[start:]
            self.lines += [f"## {title}", "", *problem]

    def accuracy(self) -> None:
        self.lines += ["## Accuracy: float vs quantized", ""]
        doc, why = read_json(self.dir / "train.json", want_object=True)
        if doc is None:
            self.lack("Accuracy", f"train.json ({why})", "qflow train CONFIG --out {dir}")
            return
        rows = [[k, doc.get(k)] for k in ("name", "dataset", "mode", "test_samples",
                                          "float_test_accuracy", "test_accuracy") if k in doc]
        f, q = doc.get("float_test_accuracy"), doc.get("test_accuracy")
        if isinstance(f, (int, float)) and isinstance(q, (int, float)):
            rows.append(["accuracy drop (float - quantized)", f - q])
        self.lines += table(["field", "value"], rows)
        curves = {k: doc[k] for k in ("float_epochs", "epochs")
                  if isinstance(doc.get(k), list) and doc[k]}
        fig, (bar_ax, curve_ax) = figure(2, 5.0)
        bars = [(n, v) for n, v in (("float32", f), ("quantized", q))
                if isinstance(v, (int, float))]
        bar_ax.bar([n for n, _ in bars], [v for _, v in bars],
                   color=["grey" if n == "float32" else "tab:blue" for n, _ in bars])
        for i, (_, v) in enumerate(bars):
            bar_ax.text(i, v, f"{v:.4f}", ha="center", va="bottom")
        bar_ax.set_ylim(0, 1.05)
        bar_ax.set_ylabel("test accuracy")
        for name, hist in curves.items():
            label = "float32" if name == "float_epochs" else doc.get("mode", "quantized")
            curve_ax.plot([r.get("epoch") for r in hist], [r.get("val_accuracy") for r in hist],
                          label=f"{label} validation")
        curve_ax.set_xlabel("epoch")
        curve_ax.set_ylabel("validation accuracy")
        curve_ax.grid(alpha=0.3)
        if curves:
            curve_ax.legend()
        self.image(save_figure(fig, self.fig("accuracy.png")), "accuracy")
        if curves:
            fig, (loss_ax,) = figure(width=5.0)
            for name, hist in curves.items():
                label = "float32" if name == "float_epochs" else doc.get("mode", "quantized")
                loss_ax.plot([r.get("epoch") for r in hist], [r.get("loss") for r in hist],
                             label=f"{label} training loss")
            loss_ax.set_xlabel("epoch")
            loss_ax.set_ylabel("cross-entropy loss")
            loss_ax.grid(alpha=0.3)
            loss_ax.legend()
            self.image(save_figure(fig, self.fig("loss.png")), "training loss")
        for name, hist in curves.items():
            self.appendix += [f"### Per epoch: {name}", ""] + records(hist)

    def sweep(self) -> None:
        doc, why = read_json(self.dir / "sweep.json", want_object=True)
        if doc is None:  # an optional study (minutes of training): left out until it is run
            self.lack("Bit-width sweep", f"sweep.json ({why})",
                      "qflow sweep CONFIG --out {dir}", shown=why != "missing")
            return
        self.lines += ["## Post-training bit-width sweep", ""]
        from flow.report.sweep import plot_sweep

        self.image(plot_sweep(doc, self.fig("sweep.png")), "sweep")
        fl = doc.get("float") or {}
        self.lines += [f"Float model: test accuracy {fmt(fl.get('test_accuracy'))} after "
                       f"{fmt(fl.get('epochs'))} epochs; {fmt(doc.get('test_samples'))} test "
                       f"samples, {fmt(doc.get('calibration_batches'))} calibration batches"
                       f"{' (quick)' if doc.get('quick') else ''}.", ""]
        self.lines += ["### Brevitas PTQ", ""] + records(doc.get("ptq") or [])
        if doc.get("qat"):
            self.lines += ["### QAT (train.json)", ""] + records([doc["qat"]])
        tq = doc.get("torch_int8") or {}
        if tq:
            variants = {k: v for k, v in tq.items() if isinstance(v, dict)}
            self.lines += ["### PyTorch int8 (torch.ao.quantization) of the same float model", ""]
            self.lines += table(["field", "value"],
                                [[k, v] for k, v in tq.items() if k not in variants])
            self.lines += records(list(variants.values()), "model", list(variants))
        rest = {k: v for k, v in doc.items()
                if k not in ("float", "ptq", "qat", "torch_int8", "test_samples",
                             "calibration_batches", "quick")}
        self.lines += render_json(rest, "sweep")

    def sqnr(self) -> None:
        self.lines += ["## SQNR per layer", "",
                       "SQNR = 10 log10(signal power / quantization-error power): weights are "
                       "the latent float weights against their quantized values; activations "
                       "the float input of each quantizer against its output, on the test "
                       "split. Exact quantization shows as — with `exact` yes.", ""]
        if not (self.dir / "checkpoint.pt").is_file():
            self.lack("SQNR", "checkpoint.pt and config.yaml", "qflow train CONFIG --out {dir}")
            return
        from flow.report import analysis

        try:
            res = analysis.sqnr(self.dir)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            self.lack("SQNR", f"a loadable checkpoint ({type(e).__name__}: {e})",
                      "qflow train CONFIG --out {dir}")
            return
        self.analysis["sqnr"] = res
        rows = res["tensors"]
        cols = ("per_tensor_db", "exact", "per_channel_min_db", "per_channel_median_db",
                "per_channel_max_db", "channels", "channels_exact", "channels_no_signal")
        self.lines += table(["layer", "tensor", *cols],
                            [[r["layer"], r["tensor"], *(r[c] for c in cols)] for r in rows])
        fig, (ax,) = figure(width=7.5)
        labels = [f"{r['layer']}\n{r['tensor']}" for r in rows]
        vals = [r["per_tensor_db"] if r["per_tensor_db"] is not None else 0.0 for r in rows]
        colors = ["tab:blue" if r["tensor"] == "weight" else "tab:orange" for r in rows]
        ax.bar(range(len(rows)), vals, color=colors)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:blue", label="weights"),
                           Patch(color="tab:orange", label="activations")], fontsize=8)
        for i, r in enumerate(rows):
            lo, hi = r["per_channel_min_db"], r["per_channel_max_db"]
            if lo is not None and hi is not None:
                ax.plot([i, i], [lo, hi], color="k", lw=1)
            if r["exact"]:
                ax.text(i, 0, "exact", ha="center", va="bottom")
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylabel("SQNR (dB): bar per tensor, line per-channel range")
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"SQNR per layer ({res['dataset']}, {res['samples']} test samples)")
        self.image(save_figure(fig, self.fig("sqnr.png")), "SQNR per layer")

    def cost(self) -> None:
        self.lines += ["## Cost model: operations, memory and energy (45 nm)", ""]
        from flow.ir import IRError
        from flow.ir import load as load_ir

        try:
            model = load_ir(self.dir)
        except IRError as e:
            self.lack("Cost model", f"a valid ir.json ({e})", "qflow export {dir}")
            return
        from flow.report.cost import cost_model

        c = cost_model(model)
        self.analysis["cost"] = c
        cols = ["layer", "datapath", "macs", "weight_bits", "act_bits", "acc_bits",
                "weight_bytes", "aux_bytes", "act_in_bytes", "act_out_bytes", "compute_pj",
                "memory_pj", "total_pj", "dram_weights_pj"]
        for kind in ("quantized", "float32"):
            part = c[kind]
            self.lines += [f"### {kind}", ""]
            self.lines += table(cols, [[r[k] for k in cols] for r in part["layers"]]
                                + [["total"] + [part["total"].get(k, "") for k in cols[1:]]])
            self.lines += table(["total", "value"], list(map(list, part["total"].items())))
        self.lines += ["### float32 / quantized", ""]
        self.lines += table(["quantity", "ratio"],
                            list(map(list, c["ratio_float32_over_quantized"].items())))
        self.lines += ["### Energy terms of the quantized layers", ""]
        self.lines += records([{"layer": r["layer"], **t} for r in c["quantized"]["layers"]
                                for t in r["terms"]])
        self.lines += [f"### Operation energies ({c['source']})", ""]
        self.lines += table(["operation", "bits", "pJ"],
                            [[t["op"], t["bits"], t["pj"]] for t in c["table_pj"]])
        self.lines += ["Model:", ""] + [f"- {m}" for m in c["model"]] + [""]
        fig, (ax,) = figure(width=7.5)
        names = [r["layer"] for r in c["quantized"]["layers"]] + ["total"]
        width = 0.2
        for j, (kind, part) in enumerate((("quantized", "compute_pj"), ("quantized", "memory_pj"),
                                          ("float32", "compute_pj"), ("float32", "memory_pj"))):
            vals = [r[part] for r in c[kind]["layers"]] + [c[kind]["total"][part]]
            ax.bar([i + (j - 1.5) * width for i in range(len(names))], vals, width,
                   label=f"{kind} {part.removesuffix('_pj')}")
        ax.set_xticks(range(len(names)), names)
        ax.set_yscale("log")
        ax.set_ylabel("energy per inference (pJ)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"energy, 45 nm: float32 / quantized = "
                     f"{c['ratio_float32_over_quantized']['total_pj']:.3g}x")
        self.image(save_figure(fig, self.fig("energy.png")), "energy per layer")

    def stage(self, section: Section) -> None:
        file = section.file
        self.lines += [f"## {section.title}", ""]
        doc, why = read_result(self.dir, file, self.fingerprint)
        if doc is None:
            self.lack(section.title, f"{file} ({why})", section.command)
            return
        doc = {k: v for k, v in doc.items() if k != FINGERPRINT}
        self.lines += [f"From `{file}`.", ""] + render_json(doc, file.removesuffix(".json"))


def report(build_dir: Path) -> Path:
    """Write build_dir/report.md (and figures/, analysis.json) from what the build holds."""
    with writing(build_dir) as folder:
        return _report(folder)


def _report(build_dir: Path) -> Path:
    r = Report(build_dir)
    r.lines += summary_lines(build_dir, r.fingerprint)
    for title, section in (("Accuracy", r.accuracy), ("Bit-width sweep", r.sweep),
                           ("SQNR", r.sqnr), ("Cost model", r.cost)):
        r.guard(title, section)
    for stage in sections():
        r.guard(stage.title, functools.partial(r.stage, stage))
    present = sorted(p.name for p in build_dir.iterdir() if p.is_file()
                     and not p.name.startswith("."))
    head = [f"# qflow report: {build_dir.resolve().name}", ""]
    tail = ["## Appendix", "", f"Build folder `{build_dir}`; files: "
            f"{', '.join(f'`{p}`' for p in present)}.", ""]
    if r.missing:
        tail += ["Missing sections:", ""] + table(["section", "needs", "run"], r.missing)
    tail += r.appendix
    if r.analysis:
        write_json(build_dir / "analysis.json", r.analysis)
    out = write_text(build_dir / "report.md", "\n".join(head + r.lines + tail).rstrip() + "\n")
    log.info("report: wrote %s (%d sections missing)", out, len(r.missing))
    return out


def cmd_report(a: argparse.Namespace) -> None:
    report(Path(a.build_dir))


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add `report BUILD_DIR` to the qflow command."""
    s = sub.add_parser("report", help="report.md with plots from what a build folder holds")
    s.add_argument("build_dir")
    s.set_defaults(func=cmd_report)
