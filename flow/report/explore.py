"""`qflow explore CONFIG --out DIR [--ray-address ADDR] [--max-points N]`: design-space
exploration on Ray.

The points are the config's `explore` section: weight bits x activation bits x folding
targets (1 bit is binary; more bits keep the config's multi-bit method, or int/uint). Each
point is a Ray task that trains (or PTQ-calibrates, as the config says) into
DIR/points/<name>/, exports and lowers it, then runs the chosen stages: verify (golden ==
qonnx executor == Brevitas), synth (Yosys LUTs, nextpnr Fmax) and firmware (RV32 under
QEMU: instructions and microseconds per inference); the cost model gives the energy per
inference. Results go to DIR/explore.json after every finished point, with the Pareto
fronts of accuracy against LUTs, firmware microseconds and energy, and DIR/explore.png.
A failed point is recorded with its error and the others go on; a re-run skips points
already done with the same config. Ray runs locally unless --ray-address names a cluster
(whose workers need qflow installed).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from flow.atomic import write_json, write_text
from flow.buildfolder import claim, writing

log = logging.getLogger("qflow.explore")
RAY_HINT = ("qflow explore needs Ray, an optional extra: pip install 'qflow[distributed]' "
            "(make setup installs it)")
# (record key, axis label) of the costs the Pareto fronts trade against accuracy
COSTS = (("luts", "LUTs (Yosys synth_xilinx)"), ("firmware_us", "firmware us / inference"),
         ("energy_pj", "energy pJ / inference (45 nm)"))


def point_config(base: dict[str, Any], w_bits: int, a_bits: int, target: tuple[str, float] | None
                 ) -> dict[str, Any]:
    """The base config at one point of the design space."""
    cfg = json.loads(json.dumps(base))
    cfg.pop("explore", None)
    model = cfg["model"]
    w = model["weight"]
    multi_w = w["quant"] not in ("binary", "binary_ste", "binary_stochastic", "binary_xnor",
                                 "ternary", "wage")
    model["weight"] = {"quant": "binary"} if w_bits == 1 else \
        {**w, "bits": w_bits} if multi_w else {"quant": "int", "bits": w_bits}
    model.pop("last_weight", None)
    a = model["act"]
    multi_a = a["quant"] not in ("binary", "binary_stochastic", "wage")
    model["act"] = {"quant": "binary"} if a_bits == 1 else \
        {**a, "bits": a_bits} if multi_a else {"quant": "uint", "bits": a_bits}
    if model.get("grad", {}).get("quant") == "wage":
        model.pop("grad")
    if cfg["train"].get("optimizer") == "wage":
        cfg["train"]["optimizer"] = "adam"
    if target is not None:
        hw = {k: v for k, v in cfg.get("hardware", {}).items() if k == "clock_mhz"}
        cfg["hardware"] = {**hw, target[0]: target[1]}
    tag = "" if target is None else f"_{'c' if target[0] == 'target_cycles' else 'fps'}{target[1]:g}"
    cfg["name"] = f"{base['name']}_w{w_bits}a{a_bits}{tag}"
    return cfg


def points(cfg: dict[str, Any], max_points: int | None = None) -> list[dict[str, Any]]:
    """Every point's config, in the order weight bits, activation bits, target."""
    ex = cfg["explore"]
    targets: list[tuple[str, float] | None] = [None]
    for key in ("target_cycles", "target_fps"):
        if ex.get(key):
            targets = [(key, v) for v in ex[key]]
    out = [point_config(cfg, w, a, t) for w, a, t in
           itertools.product(ex["weight_bits"], ex["act_bits"], targets)]
    return out[:max_points] if max_points else out


def run_point(cfg: dict[str, Any], folder: Path, stages: list[str], limit: int) -> dict[str, Any]:
    """Train, export and measure one point; a failure is returned as a record, not raised."""
    from flow.train import config as configs

    rec: dict[str, Any] = {"name": cfg["name"], "config": cfg, "status": "failed"}
    t0 = time.monotonic()
    try:
        from flow.export import export_build
        from flow.report.cost import cost_model
        from flow.train.trainer import train

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{cfg['name']}.yaml"
        write_text(path, yaml.safe_dump(cfg, sort_keys=False))
        configs.load(path)  # a point the schema refuses fails here, naming the key
        build = folder / "build"
        rec["accuracy"] = train(path, build)["test_accuracy"]
        ir = export_build(build)
        rec["initiation_interval"] = ir.initiation_interval
        rec["energy_pj"] = cost_model(ir)["quantized"]["total"]["total_pj"]
        if "verify" in stages:
            from flow.verify import verify

            v = verify(build, limit)
            rec["verified"] = bool(v["all_equal"])
        if "synth" in stages:
            from flow.synth import synthesize

            s = synthesize(build, clock_mhz=float(cfg.get("hardware", {}).get("clock_mhz", 100.0)))
            rec["luts"] = s.get("xilinx", {}).get("total", {}).get("lut")
            rec["fmax_mhz"] = min((c["achieved"] for c in s.get("pnr", {}).get("fmax", {}).values()),
                                  default=None)
            if not s.get("ok", False):
                raise RuntimeError(f"synthesis failed: {s.get('errors')}")
        if "firmware" in stages:
            from flow.backends.firmware.cli import firmware_check

            f = firmware_check(build, limit=limit, chip=cfg.get("firmware", {}).get("chip", "esp32"))
            rec["firmware_us"] = f["estimated_latency_us_at_160mhz"]
            rec["firmware_instructions"] = f["instructions_per_inference"]
        rec["status"] = "ok"
    except Exception as e:  # a failed point is reported; the exploration goes on
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc(limit=8)
    rec["seconds"] = round(time.monotonic() - t0, 1)
    write_json(folder / "point.json", rec)
    return rec


def pareto(records: list[dict[str, Any]], cost: str) -> list[str]:
    """Names of the successful points that no other point beats on both accuracy (higher)
    and `cost` (lower)."""
    ok = [r for r in records if r.get("status") == "ok" and r.get(cost) is not None]
    front = []
    for r in ok:
        dominated = any(q["accuracy"] >= r["accuracy"] and q[cost] <= r[cost]
                        and (q["accuracy"] > r["accuracy"] or q[cost] < r[cost]) for q in ok)
        if not dominated:
            front.append(r["name"])
    return sorted(front, key=lambda n: next(r[cost] for r in ok if r["name"] == n))


def plot(records: list[dict[str, Any]], fronts: dict[str, list[str]], path: Path) -> Path:
    from flow.report.plots import figure, save_figure

    fig, axes = figure(len(COSTS), width=4.6)
    for ax, (cost, label) in zip(axes, COSTS, strict=True):
        ok = [r for r in records if r.get("status") == "ok" and r.get(cost) is not None]
        ax.scatter([r[cost] for r in ok], [r["accuracy"] for r in ok], color="0.6")
        on = [next(r for r in ok if r["name"] == n) for n in fronts[cost]]
        ax.plot([r[cost] for r in on], [r["accuracy"] for r in on], "o-", color="C3",
                label="Pareto front")
        for r in on:
            ax.annotate(r["name"].rsplit("_", 2)[-2] if "_w" in r["name"] else r["name"],
                        (r[cost], r["accuracy"]), fontsize=7)
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy")
        if ok:
            ax.legend(fontsize=7)
    return save_figure(fig, path)


def _previous(out: Path) -> dict[str, dict[str, Any]]:
    path = out / "explore.json"
    if not path.is_file():
        return {}
    return {r["name"]: r for r in json.loads(path.read_text())["points"]}


def summarize(out: Path, todo: list[dict[str, Any]], records: dict[str, dict[str, Any]]
              ) -> dict[str, Any]:
    """explore.json (and the plot) from the records so far, in the points' order."""
    rows = [records[c["name"]] for c in todo if c["name"] in records]
    fronts = {cost: pareto(rows, cost) for cost, _ in COSTS}
    doc = {"points": rows, "pareto": fronts,
           "failed": [r["name"] for r in rows if r["status"] != "ok"],
           "done": sum(r["status"] == "ok" for r in rows), "total": len(todo)}
    write_json(out / "explore.json", doc)
    plot(rows, fronts, out / "explore.png")
    return doc


def explore(config: Path, out: Path, ray_address: str | None = None,
            max_points: int | None = None) -> dict[str, Any]:
    from flow.train import config as configs

    cfg = configs.load(config)
    ex = cfg.get("explore")
    if ex is None:  # rather than hours on a design space the user never chose
        raise configs.ConfigError(
            f"{config}: no explore: section to say what to explore; add one, e.g. `explore: "
            "{weight_bits: [1, 2, 4], act_bits: [1, 2, 4], stages: [verify]}` (see "
            "configs/digits_explore.yaml)")
    todo = points(cfg, max_points)
    for point in todo:  # a point the schema refuses (a name grown too long) fails now
        configs.validate(point, Path(config))
    with writing(out, create=True) as folder:
        claim(folder)  # new, empty or an earlier exploration's: never a user's folder
        return _explore(cfg, ex, todo, folder, ray_address)


def _explore(cfg: dict[str, Any], ex: dict[str, Any], todo: list[dict[str, Any]], out: Path,
             ray_address: str | None) -> dict[str, Any]:
    previous = _previous(out)
    records = {c["name"]: previous[c["name"]] for c in todo
               if previous.get(c["name"], {}).get("status") == "ok"
               and previous[c["name"]].get("config") == c}
    pending = [c for c in todo if c["name"] not in records]
    log.info("explore: %d points, %d done before, %d to run", len(todo), len(records), len(pending))
    if pending:
        try:
            import ray
        except ImportError:
            raise RuntimeError(RAY_HINT) from None
        started = not ray.is_initialized()
        if started:
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        try:
            task = ray.remote(run_point)
            futures = {task.remote(c, out / "points" / c["name"], ex["stages"], ex["limit"]): c
                       for c in pending}
            waiting = list(futures)
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                rec = ray.get(ready[0])
                records[rec["name"]] = rec
                log.info("explore: %s %s (%.0f s)%s", rec["name"], rec["status"], rec["seconds"],
                         f": {rec['error']}" if rec["status"] != "ok" else
                         f", accuracy {rec['accuracy']:.4f}")
                summarize(out, todo, records)
        finally:
            if started:
                ray.shutdown()
    doc = summarize(out, todo, records)
    log.info("explore: %d / %d points done -> %s", doc["done"], doc["total"], out / "explore.json")
    return doc
