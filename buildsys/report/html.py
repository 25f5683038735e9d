"""Small HTML builders for the report: escaped cells with a sort key, sortable tables."""

from __future__ import annotations

import html
import math


def esc(value) -> str:
    return html.escape(str(value))


def td(text, sort=None, cls: str | None = None, raw: bool = False, title: str | None = None) -> str:
    """One cell; ``sort`` its value for the table's sorting (numbers: as numbers), ``raw``: ``text``
    is HTML already."""
    attrs = ""
    if sort is not None:
        attrs += f' data-sort="{esc(_sort_key(sort))}"'
    if cls:
        attrs += f' class="{cls}"'
    if title:
        attrs += f' title="{esc(title)}"'
    return f"<td{attrs}>{text if raw else esc(text)}</td>"


def _sort_key(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(value)


def table(head: list[str], rows: list[tuple[list[str], str]], name: str, sortable: bool = True,
          text_columns: int = 1) -> str:
    """``rows``: (cells from ``td``, the row's class or ""). ``name`` goes into ``data-table``;
    the first ``text_columns`` columns are left-aligned."""
    ths = "".join(f'<th{" class=t" if i < text_columns else ""}>{esc(h)}</th>' for i, h in enumerate(head))
    body = "".join(f'<tr{f" class={cls}" if cls else ""}>{"".join(cells)}</tr>' for cells, cls in rows)
    return (f'<table data-table="{name}"{" class=sortable" if sortable else ""}><thead><tr>{ths}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def num(value, fmt: str, empty: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    return format(value, fmt)


def mb(value) -> str:
    return num(value / 1e6 if value is not None else None, ".1f")


def nbytes(value) -> str:
    """A file size for a person: kB below a megabyte (tiny test models), MB above."""
    if value is None:
        return "-"
    return f"{value / 1e3:.1f} kB" if value < 1e6 else f"{value / 1e6:.1f} MB"

