"""`qflow explore`: the design space's points, the skip of points already done, the Pareto
fronts, the hint without Ray, and (slow) a 2-point exploration on a local Ray."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flow.buildfolder import mark
from flow.report import explore
from flow.train import config

BASE = {"name": "dse", "data": {"name": "digits"},
        "model": {"hidden": [16], "weight": {"quant": "int", "bits": 4},
                  "act": {"quant": "uint", "bits": 4}},
        "train": {"epochs": 2, "mode": "ptq"},
        "explore": {"weight_bits": [1, 4], "act_bits": [2], "target_cycles": [64, 256],
                    "stages": ["verify"], "limit": 50}}


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "dse.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_points_span_bits_and_targets_and_pass_the_schema(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, BASE))
    pts = explore.points(cfg)
    assert [p["name"] for p in pts] == ["dse_w1a2_c64", "dse_w1a2_c256", "dse_w4a2_c64",
                                        "dse_w4a2_c256"]
    assert pts[0]["model"]["weight"] == {"quant": "binary"}
    assert pts[2]["model"]["weight"]["bits"] == 4 and pts[2]["model"]["act"]["bits"] == 2
    assert pts[1]["hardware"] == {"clock_mhz": 100.0, "target_cycles": 256}
    for p in pts:
        config.validate(p, Path(f"{p['name']}.yaml"))
    assert len(explore.points(cfg, max_points=3)) == 3


def test_pareto_front_keeps_undominated_points() -> None:
    recs = [{"name": "a", "status": "ok", "accuracy": 0.9, "luts": 900},
            {"name": "b", "status": "ok", "accuracy": 0.8, "luts": 100},
            {"name": "c", "status": "ok", "accuracy": 0.8, "luts": 300},  # beaten by b
            {"name": "d", "status": "ok", "accuracy": 0.95, "luts": 5000},
            {"name": "e", "status": "failed", "error": "x"}]
    assert explore.pareto(recs, "luts") == ["b", "a", "d"]


def test_rerun_skips_done_points_and_reports_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    cfg = config.load(write(tmp_path, BASE))
    pts = explore.points(cfg)
    ok = {"status": "ok", "accuracy": 0.9, "energy_pj": 10.0, "seconds": 1.0}
    done = [{"name": pts[0]["name"], "config": pts[0], **ok},
            {"name": pts[1]["name"], "config": {**pts[1], "seed": 9}, **ok},  # config changed
            {"name": pts[2]["name"], "config": pts[2], "status": "failed", "error": "E"}]
    (tmp_path / "out").mkdir()
    mark(tmp_path / "out")  # an earlier exploration's folder
    (tmp_path / "out" / "explore.json").write_text(json.dumps({"points": done}))


    monkeypatch.setattr(builtins, "__import__", _no_ray(builtins.__import__))
    with pytest.raises(RuntimeError, match=r"pip install 'qflow\[distributed\]'"):
        explore.explore(tmp_path / "dse.yaml", tmp_path / "out")
    monkeypatch.undo()
    # with everything done, nothing needs Ray and explore.json keeps the fronts
    every = [{"name": p["name"], "config": p, **ok, "energy_pj": 10.0 + i} for i, p in enumerate(pts)]
    (tmp_path / "out" / "explore.json").write_text(json.dumps({"points": every}))
    monkeypatch.setattr(builtins, "__import__", _no_ray(builtins.__import__))
    doc = explore.explore(tmp_path / "dse.yaml", tmp_path / "out")
    assert doc["done"] == 4 and doc["pareto"]["energy_pj"] == [pts[0]["name"]]
    assert (tmp_path / "out" / "explore.png").is_file()


def _no_ray(real: Any) -> Any:
    def imp(name: str, *a: Any, **k: Any) -> Any:
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)
    return imp


@pytest.mark.slow  # trains, builds, synthesizes and runs two points on a local Ray (minutes)
def test_two_point_exploration_on_local_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # 4-bit weights: a PTQ'd binary 8-wide layer is near chance, which says nothing here
    doc = {**BASE, "explore": {**BASE["explore"], "weight_bits": [4], "act_bits": [2, 4],
                               "target_cycles": [64], "stages": ["verify", "synth", "firmware"]}}
    doc["model"] = {**BASE["model"], "hidden": [8]}
    res = explore.explore(write(tmp_path, doc), tmp_path / "out")
    assert res["total"] == 2 and res["done"] == 2, res["points"]
    for r in res["points"]:
        assert r["verified"] and r["luts"] > 0 and r["firmware_us"] > 0 and r["energy_pj"] > 0
        assert r["accuracy"] > 0.5
    assert all(res["pareto"][k] for k in ("luts", "firmware_us", "energy_pj"))
    again = explore.explore(write(tmp_path, doc), tmp_path / "out")  # nothing to redo
    assert [r["seconds"] for r in again["points"]] == [r["seconds"] for r in res["points"]]
