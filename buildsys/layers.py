"""The layer-wise accuracy report (``buildsys_compare_layers``) as users read it.

A report is ``{"samples", "compared", "measure", "nodes": [row, ...]}``, rows ranked by the error
they add; a row has ``node``, ``op_type``, ``module`` (the model's module path, where the exporter
recorded it), ``source`` (file:line), ``added``, ``error``, ``max_abs``, ``cosine``, ``nonfinite``
(``added`` and ``error`` are the string ``"inf"`` for an overflow). Written by the plugin that
implements the hook, read here: by the validate stage's failure message, ``buildsys debug`` and
``buildsys report --layers``.
"""

from __future__ import annotations

COLUMNS = ("rank", "added", "error", "max_abs", "cosine", "op", "node", "module / source")


def label(row: dict) -> str:
    """``MatMul node_MatMul_5 (encoder.layer.0.intermediate.dense)``."""
    return f"{row['op_type']} {row['node']}" + (f" ({row['module']})" if row.get("module") else "")


def number(value) -> str:
    return value if isinstance(value, str) else f"{value:.3g}"


def diverging(report: dict, top: int) -> list[dict]:
    """The first ``top`` rows that add error (an overflow, or more than nothing)."""
    return [r for r in report.get("nodes", [])[:top] if r["added"] == "inf" or r["added"] > 0]


def summary(report: dict, top: int = 3) -> str:
    """One line naming the ``top`` nodes adding the most error."""
    rows = diverging(report, top)
    if not rows:
        return "layer-wise: no node adds error beyond its inputs' (the graphs agree layer by layer)"
    return "layer-wise, first diverging nodes: " + "; ".join(
        f"{label(r)} adds {number(r['added'])}{' (non-finite values)' if r.get('nonfinite') else ''}, "
        f"cosine {r['cosine']:.4f}" for r in rows)


def table(report: dict, top: int | None = None) -> list[str]:
    """The ranked rows as aligned text lines, a header first."""
    rows = report.get("nodes", [])[:top]
    cells = [COLUMNS] + [(str(i + 1), number(r["added"]), number(r["error"]), number(r["max_abs"]),
                          f"{r['cosine']:.5f}", r["op_type"], r["node"],
                          " ".join(x for x in (r.get("module") or "", short_source(r.get("source"))) if x) or "-")
                         for i, r in enumerate(rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS) - 1)]
    return ["  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1] for c in cells]


def short_source(source: str | None) -> str:
    """``models/minilm.py:41`` from ``models/minilm.py:41 in forward: x = ...``."""
    return source.split(" in ", 1)[0] if source and not source.startswith("(") else ""
