"""The page's layer-wise section (``buildsys report --layers``): per reduced-precision target,
the nodes adding the most error against the fp32 graph it was lowered from.

Each report is the ``buildsys_compare_layers`` hook's (``buildsys.layers`` describes a row),
computed from the build cache as ``buildsys debug`` does, so a target whose validation failed,
and therefore has no artifact.json, is shown too. Every name is the exporter's or the model
author's, never trusted: each cell is escaped by ``td``.
"""

from __future__ import annotations

from ..layers import number, short_source
from .html import table, td

HEAD = ["target", "rank", "op", "node", "module", "source", "added", "error", "max abs err", "cosine"]


def layers_section(reports: dict[str, dict | str], top: int) -> list[str]:
    """``reports``: target -> the layer report, or the reason there is none (not cached ...)."""
    if not reports:
        return []
    rows = [row for target, report in reports.items() for row in _rows(target, report, top)]
    return ["<h2>Layer-wise accuracy</h2>",
            "<p class=note>Per reduced-precision target, the nodes that add the most error over their "
            "inputs' (||reduced - fp32|| / ||fp32|| of the node's output, minus the worst of its inputs'), "
            f"top {top}, on the validation's held-out samples; <code>buildsys debug MANIFEST -t TARGET</code> "
            "prints the whole ranking.</p>",
            table(HEAD, rows, "layers")]


def _rows(target: str, report: dict | str, top: int) -> list[tuple[list[str], str]]:
    if isinstance(report, str):
        return [([td(target), td("-"), td("-"), td("-"), td("-"), td(report, cls="t"), td("-"), td("-"),
                  td("-"), td("-")], "")]
    return [([td(target), td(str(i + 1), i + 1), td(r["op_type"], cls="t"), td(r["node"], cls="t"),
              td(r.get("module") or "-", cls="t"),
              td(short_source(r.get("source")) or "-", cls="t", title=r.get("source") or None),
              _number(r["added"]), _number(r["error"]), _number(r["max_abs"]),
              td(f"{r['cosine']:.5f}", r["cosine"])], "fail" if r.get("nonfinite") else "")
            for i, r in enumerate(report.get("nodes", [])[:top])]


def _number(value) -> str:
    return td(number(value), float("inf") if value == "inf" else value)

