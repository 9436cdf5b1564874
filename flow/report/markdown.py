"""Markdown for the report: cells, tables, and any JSON document rendered generically."""

from __future__ import annotations

import json
from typing import Any

LIST_INLINE = 20  # list items shown inline in a table cell before eliding


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        shown = ", ".join(fmt(x) for x in v[:LIST_INLINE])
        return f"[{shown}{', …' if len(v) > LIST_INLINE else ''}] ({len(v)})" \
            if len(v) > LIST_INLINE else f"[{shown}]"
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> dotted keys; lists of scalars stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def records(items: list[dict[str, Any]], label: str | None = None,
             names: list[str] | None = None) -> list[str]:
    flat = [flatten(x) for x in items]
    cols = list(dict.fromkeys(k for f in flat for k in f))
    header = ([label] if label else []) + cols
    rows = [([names[i]] if names else []) + [f.get(c) for c in cols] for i, f in enumerate(flat)]
    return table(header, rows)


def render_json(doc: Any, title: str, level: int = 3) -> list[str]:
    """Any JSON document as markdown: a key/value table of its scalars, a matrix for a dict
    of dicts (rows = keys), a table for a list of records, subsections for the rest."""
    h = "#" * min(level, 6)
    if not isinstance(doc, dict):
        return [f"{h} {title}", ""] + table(["value"], [[doc]])
    lines: list[str] = []
    scalars = [[k, v] for k, v in doc.items()
               if not isinstance(v, (dict, list)) or (isinstance(v, list)
                                                      and not any(isinstance(x, dict) for x in v))]
    if scalars:
        lines += table(["field", "value"], scalars)
    for k, v in doc.items():
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            lines += [f"{h} {title}: {k}", ""] + records(list(v.values()), k, list(v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            lines += [f"{h} {title}: {k}", ""] + records(v)
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):  # mixed list
            lines += [f"{h} {title}: {k}", ""] + table(["item"], [[x] for x in v])
        elif isinstance(v, dict) and v:
            lines += [f"{h} {title}: {k}", ""] + render_json(v, f"{title}: {k}", level + 1)
    return lines

