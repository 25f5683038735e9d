"""``buildsys report``: one self-contained HTML page to pick an artifact from.

Reads what is already on disk, runs nothing: each target's artifact.json (through
``built_records``) and every stored bench result of the manifest (one per host and device).
The page carries everything it shows — charts as inline SVG, style and the table-sorting script
inline, no link or source outside it — so it can be mailed or attached to a CI run alone.
``report.png`` (matplotlib, when installed) is written beside it for those who want an image.

Per bench result: a pick per batch (none when the run was NOISY), latency by batch, accuracy
vs latency and size vs latency per batch, every (variant, batch) in one sortable table with
each variant's own memory and cold start, what was not timed and why. Per artifact: what it is,
validation, and provenance (digest, tools, opset, build host, stages). With ``--layers``, per
reduced-precision target the nodes adding the most error (``layers_view``): the one section that
runs something, the layer-wise comparison ``buildsys debug`` runs, from the build cache.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..artifacts import built_records
from .artifact_view import artifacts_section, provenance_section
from .assets import SCRIPT, STYLE
from .bench_view import host_section
from .html import esc
from .layers_view import layers_section


def render(project, docs: list[dict], layers: dict[str, dict | str] | None = None, top: int = 5) -> str:
    """The page; ``layers``: target -> its layer-wise report or why there is none (``--layers``)."""
    m = project.manifest
    records = built_records(project.out_root, m)
    body = [f"<h1>{esc(m.name)} {esc(m.version)}</h1>",
            f"<p>Manifest {esc(m.path.name)}; {len(m.targets)} target(s); {len(docs)} stored bench result(s); "
            f"page written {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}.</p>"]
    if not docs:
        body.append(f"<p class=neutral>No bench results yet: run <code>buildsys bench {esc(m.path.name)}</code>.</p>")
    for doc in docs:
        body += host_section(doc, records)
    body += artifacts_section(records) + layers_section(layers or {}, top) + provenance_section(records)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>buildsys report {esc(m.name)} {esc(m.version)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + f"<script>{SCRIPT}</script></body></html>\n")


def write(project, docs: list[dict], out_dir: Path, png: bool = True, layers: dict[str, dict | str] | None = None,
          top: int = 5) -> tuple[Path, Path | None, str | None]:
    """Write ``report.html`` (and, with ``png``, ``report.png``) into ``out_dir``; return both
    paths and any reason the PNG is missing. ``layers``/``top``: as ``render``."""
    from .png import plot

    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "report.html"
    page.write_text(render(project, docs, layers, top))
    image, problem = out_dir / "report.png", None
    if png and docs:
        problem = plot(docs, image)
    return page, image if png and docs and problem is None else None, problem
