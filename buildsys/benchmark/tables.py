"""Bench results as tables: markdown (terminal and bench/results/*.md) and a verdict per batch."""

from __future__ import annotations

from . import results

COLUMNS = ("variant", "kind", "device", "median ms", "p95 ms", "items/s", "vs eager", "mem MB",
           "kernels", "max abs diff", "load", "first call")


def _num(value, fmt: str, empty: str = "-") -> str:
    return empty if value is None else format(value, fmt)


def seconds(value: float) -> str:
    """Seconds for a person: milliseconds below one second (a first call is often 0.3 ms)."""
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def row_cells(doc: dict, r: dict) -> list[str]:
    wrong = "" if r["within_tolerance"] else " WRONG"
    memory, _ = results.memory_bytes(doc, r)
    load_s, first_s, _ = results.cold_start(doc, r)
    return [r["variant"], r["kind"], r["device"], f"{r['median_ms']:.3f}", f"{r['p95_ms']:.3f}",
            f"{r['items_per_s']:.0f}", _num(r["speedup"], ".2f") + ("x" if r["speedup"] else ""),
            _num(memory / 1e6 if memory is not None else None, ".1f"), _num(r.get("kernels"), "d"),
            f"{r['max_abs_diff']:.2e}{wrong}", seconds(load_s), seconds(first_s)]


def batch_table(doc: dict, batch: int) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(doc, r)) + " |" for r in doc["rows"] if r["batch"] == batch]
    return lines


def verdict(doc: dict, batch: int = 1) -> str:
    choice = results.pick(doc, batch)
    if choice.row is None:
        return f"{doc['name']} at batch {batch}: {choice.why}"
    best = choice.row
    return (f"{doc['name']}: best artifact at batch {batch} is {best['variant']} ({best['kind']}, "
            f"{best['device']}) — {choice.why}")


def _noise(doc: dict) -> list[str]:
    noisy = results.noise(doc)
    return [f"**NOISY**: {noisy}: rerun on a quiet machine; no artifact is picked.", ""] if noisy else []


def render(doc: dict) -> str:
    """The whole result as markdown: host, method, one table per batch, skipped, notes, verdicts."""
    host = doc["host"]
    gpus = ", ".join(f"{g['name']} (sm{g['sm']})" for g in host.get("gpus", [])) or "none"
    cpu = f" ({host['cpu_model']})" if host.get("cpu_model") else ""
    lines = [f"# bench {doc['name']} {doc['version']} on {host['id']}", "",
             f"Host {host.get('hostname')}: {host.get('cpu_tag')}{cpu}, GPUs {gpus}; device {doc['device']}; "
             f"timing: {doc.get('meter')}; {results.memory_method(doc)}; {doc['created']}.", "",
             f"Method: warm-up {doc['method']['warmup']} calls, then {doc.get('rounds')} interleaved shuffled "
             f"rounds of a burst of {doc['method']['burst']} calls per (variant, batch), first "
             f"{doc['method']['settle']} of each burst uncounted. Same inputs for every variant: "
             f"{doc.get('inputs')}.", "", *_noise(doc)]
    for batch in doc["batches"]:
        lines += [f"## batch {batch}", ""] + batch_table(doc, batch) + [""]
    lines += [f"- skipped {s['target']} ({s['kind']}): {s['reason']}" for s in doc.get("skipped", [])]
    lines += [f"- note: {n}" for n in doc.get("notes", [])]
    for batch in doc["batches"]:
        lines += ["", f"**{verdict(doc, batch)}**"]
    lines.append("")
    return "\n".join(lines)
