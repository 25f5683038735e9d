"""``buildsys report``: one HTML page (and a PNG plot) to pick an artifact from.

Reads what is already on disk, runs nothing: each target's artifact.json (hardware tag,
precision, size, build time, validation) and every stored bench result of the manifest (one
per host and device). The HTML needs nothing beyond the standard library; the PNG is drawn with
matplotlib when it is installed, and the page says so when it is not.
"""

from __future__ import annotations

import html
from pathlib import Path

from .artifacts import built_records
from .benchmark.measure import best_artifact

STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child"
         "{text-align:left}.best{background:#e6ffe6}.bad{color:#b00}")


def artifact_facts(record: dict | None) -> dict:
    """What a person compares before latency: hardware, precision, size, build time, accuracy."""
    if record is None:
        return {"built": False}
    validation = record.get("validation") or {}
    outputs = validation.get("outputs") or []
    return {"built": True, "kind": record.get("kind"), "hardware": record.get("hardware"),
            "precision": record.get("precision"),
            "size": sum(f.get("size", 0) for f in record.get("files", [])),
            "build_s": sum(step.get("seconds", 0.0) for step in record.get("chain", [])),
            "validation": validation.get("status", "none"),
            "cosine": min((o.get("cosine", 1.0) for o in outputs), default=None),
            "max_abs": max((o.get("max_abs", 0.0) for o in outputs), default=None)}


def latency_table(doc: dict) -> dict[str, dict[int, dict]]:
    """variant -> batch -> row."""
    table: dict[str, dict[int, dict]] = {}
    for row in doc["rows"]:
        table.setdefault(row["variant"], {})[row["batch"]] = row
    return table


def _cell(value, fmt: str = "") -> str:
    return "-" if value is None else html.escape(format(value, fmt) if fmt else str(value))


def facts_section(records: dict[str, dict | None]) -> list[str]:
    head = ["target", "kind", "hardware", "precision", "size MB", "build s", "validation", "min cosine", "max abs err"]
    lines = ["<h2>Artifacts</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for name, record in records.items():
        f = artifact_facts(record)
        if not f["built"]:
            lines.append(f"<tr><td>{html.escape(name)}</td><td colspan={len(head) - 1}>not built</td></tr>")
            continue
        cls = "" if f["validation"] == "passed" else " class=bad"
        lines.append(f"<tr><td>{html.escape(name)}</td><td>{_cell(f['kind'])}</td><td>{_cell(f['hardware'])}</td>"
                     f"<td>{_cell(f['precision'])}</td><td>{f['size'] / 1e6:.2f}</td><td>{f['build_s']:.1f}</td>"
                     f"<td{cls}>{_cell(f['validation'])}</td><td>{_cell(f['cosine'], '.6f')}</td>"
                     f"<td>{_cell(f['max_abs'], '.2e')}</td></tr>")
    return lines + ["</table>"]


def bench_section(doc: dict) -> list[str]:
    host = doc["host"]
    gpus = ", ".join(g["name"] for g in host.get("gpus", [])) or "no GPU"
    best = best_artifact(doc["rows"], doc["batches"][0])
    lines = [f"<h2>Latency on {html.escape(host['id'])} ({html.escape(gpus)}, device {doc['device']})</h2>",
             f"<p>{html.escape(str(doc.get('meter')))}; memory: {html.escape(str(doc.get('memory')))}; "
             f"{doc.get('created')}. Median (p95) ms per forward; ratio = {doc.get('baseline', 'eager')} median / "
             "variant median at the same batch.</p>"]
    share = doc.get("others_cpu_share")
    if share is not None and share > 0.05:
        lines.append(f"<p class=bad>NOISY: other processes used {share:.0%} of the CPUs while timing; "
                     "rerun on a quiet machine before trusting small differences.</p>")
    if best:
        lines.append(f"<p><b>Pick: {html.escape(best['variant'])}</b> — fastest artifact that agrees with eager at "
                     f"batch {best['batch']}: {best['median_ms']:.3f} ms, {best['speedup']:.2f}x.</p>")
    head = ["variant", "kind", "device"] + [f"batch {b}" for b in doc["batches"]] + \
           [f"vs eager @{b}" for b in doc["batches"]] + ["kernels/fwd", "peak mem MB"]
    lines.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>")
    for variant, by_batch in latency_table(doc).items():
        first = next(iter(by_batch.values()))
        cls = " class=best" if best and variant == best["variant"] else ""
        cells = [f"{r['median_ms']:.3f} ({r['p95_ms']:.3f})" + ("" if r["within_tolerance"] else " WRONG")
                 for r in by_batch.values()]
        ratios = [f"{r['speedup']:.2f}x" if r["speedup"] else "-" for r in by_batch.values()]
        memory = first.get("peak_memory_bytes")
        lines.append(f"<tr{cls}><td>{html.escape(variant)}</td><td>{first['kind']}</td><td>{first['device']}</td>"
                     + "".join(f"<td>{c}</td>" for c in cells + ratios)
                     + f"<td>{_cell(first.get('kernels'))}</td><td>{_cell(memory / 1e6 if memory else None, '.0f')}</td></tr>")
    lines.append("</table>")
    lines += [f"<p>skipped {html.escape(s['target'])} ({html.escape(s['kind'])}): {html.escape(s['reason'])}</p>"
              for s in doc.get("skipped", [])]
    lines += [f"<p>note: {html.escape(n)}</p>" for n in doc.get("notes", [])]
    return lines


def plot(docs: list[dict], path: Path) -> str | None:
    """Latency by batch per variant, one panel per host; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    fig, axes = plt.subplots(1, len(docs), figsize=(7 * len(docs), 4.5), squeeze=False)
    for ax, doc in zip(axes[0], docs):
        for variant, by_batch in latency_table(doc).items():
            batches = sorted(by_batch)
            ax.plot(batches, [by_batch[b]["median_ms"] for b in batches], marker="o",
                    linestyle="--" if not next(iter(by_batch.values()))["artifact"] else "-", label=variant)
        ax.set(xscale="log", yscale="log", xlabel="batch", ylabel="median ms / forward",
               title=f"{doc['name']} on {doc['host']['id']}")
        ax.set_xticks(doc["batches"], [str(b) for b in doc["batches"]])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def render(project, docs: list[dict], png_name: str | None, png_problem: str | None) -> str:
    m = project.manifest
    body = [f"<h1>{html.escape(m.name)} {html.escape(m.version)}</h1>",
            f"<p>Manifest {html.escape(m.path.name)}; {len(m.targets)} target(s); "
            f"{len(docs)} stored bench result(s).</p>"]
    body += facts_section(built_records(project.out_root, project.manifest))
    if not docs:
        body.append(f"<p>No bench results yet: run <code>buildsys bench {html.escape(m.path.name)}</code>.</p>")
    for doc in docs:
        body += bench_section(doc)
    if png_name:
        body.append(f'<p><img src="{html.escape(png_name)}" alt="latency by batch"></p>')
    elif png_problem:
        body.append(f"<p>{html.escape(png_problem)}</p>")
    return ("<!doctype html><html><head><meta charset=utf-8><title>buildsys report "
            f"{html.escape(m.name)}</title><style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def write(project, docs: list[dict], out_dir: Path) -> tuple[Path, Path | None, str | None]:
    """Write ``report.html`` (and ``report.png``) into ``out_dir``; return both paths and any
    reason the plot is missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "report.png"
    problem = plot(docs, png) if docs else None
    made = png if docs and problem is None else None
    page = out_dir / "report.html"
    page.write_text(render(project, docs, made.name if made else None, problem))
    return page, made, problem
