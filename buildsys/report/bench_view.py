"""The page's view of one stored bench result (one host and device): picks, charts, tables."""

from __future__ import annotations

from ..benchmark import results
from ..benchmark.tables import seconds
from . import charts
from .artifact_view import size
from .html import esc, mb, nbytes, table, td


def host_section(doc: dict, records: dict[str, dict | None]) -> list[str]:
    host = doc["host"]
    return [f'<section data-host="{esc(host["id"])}"><h2>Measured on {esc(host["id"])} (device {esc(doc["device"])})</h2>',
            host_line(doc), *stale(doc, records), *noisy_banner(doc), *picks_table(doc),
            *charts_block(doc, records), *results_table(doc, records), *cold_start_table(doc),
            *skipped_table(doc), *method(doc), "</section>"]


def host_line(doc: dict) -> str:
    host = doc["host"]
    gpus = ", ".join(f"{g['name']} (sm{g['sm']})" for g in host.get("gpus", [])) or "no GPU"
    cpu = host.get("cpu_model") or "CPU model not recorded"
    tools = ", ".join(f"{k} {v}" for k, v in sorted((doc.get("tools") or {}).items())) or "not recorded"
    return (f"<p>Host <b>{esc(host.get('hostname'))}</b>: {esc(cpu)} ({esc(host.get('cpu_tag'))}), {esc(gpus)}; "
            f"measured {esc(doc.get('created'))} with {esc(tools)}.</p>")


def stale(doc: dict, records: dict[str, dict | None]) -> list[str]:
    """Targets built again (or removed) since this result was measured: its figures are not theirs."""
    lines = []
    for target, measured in (doc.get("artifacts") or {}).items():
        record = records.get(target)
        now = (record.get("chain") or [{}])[-1].get("action_key") if record else None
        if now != measured.get("action_key"):
            what = "is no longer built" if record is None else "was built again since (another action key)"
            lines.append(f"{esc(target)} {what}")
    return [f"<p class=warn>This result measured other builds: {'; '.join(lines)}. Rerun buildsys bench.</p>"] if lines else []


def noisy_banner(doc: dict) -> list[str]:
    noisy = results.noise(doc)
    if not noisy:
        return []
    return [f"<p class=warn data-noisy><b>NOISY</b>: {esc(noisy)}. The ranking below may be the other processes', "
            "not the artifacts': no artifact is picked. Rerun on a quiet machine (bench --wait-quiet 60).</p>"]


def picks_table(doc: dict) -> list[str]:
    baseline = doc.get("baseline", "eager")
    rows = []
    for choice in results.picks(doc):
        r = choice.row
        if r is None:
            rows.append(([td(choice.batch), td("no pick", cls="neutral"), td("-"), td("-"), td(choice.why, cls="t")],
                         ""))
            continue
        rows.append(([td(choice.batch), td(f"<b>{esc(r['variant'])}</b> ({esc(r['kind'])})", raw=True, cls="t"),
                      td(f"{r['median_ms']:.3f}"), td(_ratio(r)), td(choice.why, cls="t")],
                     "pick"))
    return ["<h3>Pick per batch</h3>",
            table(["batch", "pick", "median ms", f"vs {baseline}", "why"], rows, "picks", sortable=False)]


def charts_block(doc: dict, records: dict[str, dict | None]) -> list[str]:
    names = list(dict.fromkeys(r["variant"] for r in doc["rows"]))
    palette = charts.colors(names)
    references = {r["variant"] for r in doc["rows"] if not r["artifact"]}
    latency = []
    for name in names:
        rows = sorted((r for r in doc["rows"] if r["variant"] == name), key=lambda r: r["batch"])
        latency.append(charts.Series(name, palette[name], [(r["batch"], r["median_ms"], _tip(r)) for r in rows],
                                     line=True, dashed=name in references))
    parts = [charts.chart("latency", "median latency by batch", "batch", "ms per call", latency,
                          xticks=sorted(doc["batches"]), labels=False)]
    for batch in doc["batches"]:
        parts += tradeoff_charts(doc, batch, records, palette)
    return ["<h3>Latency, accuracy and size</h3>",
            "<p class=note>Accuracy: the largest |difference| from the baseline's outputs on the same inputs "
            "(0: identical; ∞: outputs that do not line up). A ring marks the pick. Dashed: references. "
            "Hover a point for its figures.</p>",
            charts.legend(names, palette, references), f"<div class=charts>{''.join(parts)}</div>"]


def tradeoff_charts(doc: dict, batch: int, records: dict[str, dict | None], palette: dict[str, str]) -> list[str]:
    choice = results.pick(doc, batch)
    picked = choice.row["variant"] if choice.row else None
    accuracy, sizes = [], []
    for r in (r for r in doc["rows"] if r["batch"] == batch):
        mark = {0} if r["variant"] == picked else set()
        accuracy.append(charts.Series(r["variant"], palette[r["variant"]],
                                      [(r["median_ms"], r["max_abs_diff"], _tip(r))], marked=mark))
        record = records.get(r["variant"]) if r["artifact"] else None
        if record is not None:
            sizes.append(charts.Series(r["variant"], palette[r["variant"]],
                                       [(r["median_ms"], size(record) / 1e6, _tip(r) + f", {nbytes(size(record))}")],
                                       marked=mark))
    baseline = doc.get("baseline", "eager")
    return [charts.chart(f"accuracy-{batch}", f"batch {batch}: accuracy vs latency", "median ms",
                         f"max |diff| vs {baseline}", accuracy),
            charts.chart(f"size-{batch}", f"batch {batch}: size vs latency", "median ms", "artifact MB", sizes)]


def _ratio(r: dict) -> str:
    return f"{r['speedup']:.2f}x" if r.get("speedup") else "-"


def _tip(r: dict) -> str:
    return (f"{r['variant']} at batch {r['batch']}: {r['median_ms']:.3f} ms (p95 {r['p95_ms']:.3f}), "
            f"max |diff| {r['max_abs_diff']:.2e}")


def results_table(doc: dict, records: dict[str, dict | None]) -> list[str]:
    baseline = doc.get("baseline", "eager")
    picked = {(c.row["variant"], c.batch) for c in results.picks(doc) if c.row}
    own = bool(doc.get("footprints"))
    head = ["variant", "batch", "kind", "precision", "device", "median ms", "p95 ms", "items/s", f"vs {baseline}",
            "max |diff|", "agrees", "own memory MB" if own else "peak RSS MB (shared)", "load", "first call",
            "size", "n"]
    rows = []
    for r in doc["rows"]:
        memory, _ = results.memory_bytes(doc, r)
        load_s, first_s, _ = results.cold_start(doc, r)
        record = records.get(r["variant"]) if r["artifact"] else None
        size_b = size(record) if record else None
        agrees = td("yes", cls="ok") if r["within_tolerance"] else td("WRONG", cls="fail")
        rows.append(([td(r["variant"]), td(r["batch"], r["batch"]), td(r["kind"]), td(r.get("precision") or "-"),
                      td(r["device"]), td(f"{r['median_ms']:.3f}", r["median_ms"]), td(f"{r['p95_ms']:.3f}", r["p95_ms"]),
                      td(f"{r['items_per_s']:.0f}", r["items_per_s"]),
                      td(_ratio(r), r.get("speedup") or ""),
                      td(f"{r['max_abs_diff']:.2e}", r["max_abs_diff"]), agrees, td(mb(memory), memory if memory is not None else ""),
                      td(seconds(load_s), load_s), td(seconds(first_s), first_s),
                      td(nbytes(size_b), size_b if size_b is not None else ""), td(r.get("n", "-"), r.get("n"))],
                     "pick" if (r["variant"], r["batch"]) in picked else ""))
    return ["<h3>Every variant at every batch</h3>",
            f"<p class=note>Click a column to sort. Median and p95 over the counted calls; {esc(results.memory_method(doc))}.</p>",
            table(head, rows, "results")]


def cold_start_table(doc: dict) -> list[str]:
    """Per variant: how long until its first result, and what it holds once loaded."""
    first_batch = min(doc["batches"])
    head = ["variant", "kind", "load", f"first call (batch {first_batch})", "to first result",
            "memory after load MB", "measured in"]
    rows = []
    for r in (r for r in doc["rows"] if r["batch"] == first_batch):
        load_s, first_s, fresh = results.cold_start(doc, r)
        own = results.footprint(doc, r["variant"])
        after_load = own.load_peak_bytes if own else None
        rows.append(([td(r["variant"]), td(r["kind"]), td(seconds(load_s), load_s), td(seconds(first_s), first_s),
                      td(seconds(load_s + first_s), load_s + first_s),
                      td(mb(after_load), after_load if after_load is not None else ""),
                      td("a fresh process (cold)" if fresh else "the shared timing process", cls="t")], ""))
    return ["<h3>Cold start</h3>",
            "<p class=note>Load: the runner's load (a reference: its framework's import and the model's build); "
            "in a fresh process it includes importing the runtime. First call: the first run at that shape "
            "(torch.compile compiles here).</p>",
            table(head, rows, "cold-start")]


def skipped_table(doc: dict) -> list[str]:
    skipped = doc.get("skipped") or []
    if not skipped:
        return []
    rows = [([td(s["target"]), td(s.get("kind", "-")),
              td("failed", cls="fail") if s.get("failed") else td("not run", cls="neutral"),
              td(s["reason"], cls="t")], "") for s in skipped]
    return ["<h3>Not timed here</h3>", table(["target", "kind", "status", "reason"], rows, "skipped", text_columns=2)]


def method(doc: dict) -> list[str]:
    m = doc.get("method") or {}
    lines = [f"<p class=note>Method: {esc(doc.get('meter'))}; warm-up {esc(m.get('warmup'))} calls per variant "
             f"and batch, then {esc(doc.get('rounds'))} interleaved shuffled rounds of a burst of {esc(m.get('burst'))} "
             f"calls per (variant, batch), the first {esc(m.get('settle'))} of each burst uncounted. Same inputs for "
             f"every variant: {esc(_inputs(doc))}.</p>"]
    lines += [f"<p class=note>note: {esc(n)}</p>" for n in doc.get("notes", [])]
    return lines


def _inputs(doc: dict) -> str:
    by_batch = doc.get("inputs") or {}
    return "; ".join(f"batch {b}: " + ", ".join(f"{i['name']} {i['dtype']}{i['shape']}" for i in inputs)
                     for b, inputs in by_batch.items()) or "not recorded"
