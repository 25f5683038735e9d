"""Bench results as tables: markdown (terminal and bench/results/*.md) and a verdict line."""

from __future__ import annotations

from .measure import best_artifact

COLUMNS = ("variant", "kind", "device", "median ms", "p95 ms", "items/s", "vs eager", "peak mem MB",
           "kernels", "max abs diff", "load s", "first call s")


def _num(value, fmt: str, empty: str = "-") -> str:
    return empty if value is None else format(value, fmt)


def row_cells(r: dict) -> list[str]:
    wrong = "" if r["within_tolerance"] else " WRONG"
    memory = r.get("peak_memory_bytes")
    return [r["variant"], r["kind"], r["device"], f"{r['median_ms']:.3f}", f"{r['p95_ms']:.3f}",
            f"{r['items_per_s']:.0f}", _num(r["speedup"], ".2f") + ("x" if r["speedup"] else ""),
            _num(memory / 1e6 if memory else None, ".0f"), _num(r.get("kernels"), "d"),
            f"{r['max_abs_diff']:.2e}{wrong}", f"{r['load_s']:.2f}", f"{r['first_call_s']:.2f}"]


def batch_table(doc: dict, batch: int) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in doc["rows"] if r["batch"] == batch]
    return lines


def verdict(doc: dict, batch: int = 1) -> str:
    best = best_artifact(doc["rows"], batch)
    if best is None:
        return f"{doc['name']}: no artifact ran correctly at batch {batch}"
    return (f"{doc['name']}: best artifact at batch {batch} is {best['variant']} ({best['kind']}, "
            f"{best['device']}) at {best['median_ms']:.3f} ms, {best['speedup']:.2f}x {doc.get('baseline', 'eager')}")


def _noise(doc: dict) -> list[str]:
    share = doc.get("others_cpu_share")
    if share is None or share <= 0.05:
        return []
    return [f"**NOISY**: other processes used {share:.0%} of the CPUs while timing: rerun on a quiet machine.", ""]


def render(doc: dict) -> str:
    """The whole result as markdown: host, method, one table per batch, skipped, notes, verdict."""
    host = doc["host"]
    gpus = ", ".join(f"{g['name']} (sm{g['sm']})" for g in host.get("gpus", [])) or "none"
    lines = [f"# bench {doc['name']} {doc['version']} on {host['id']}", "",
             f"Host {host.get('hostname')}: {host.get('cpu_tag')}, GPUs {gpus}; device {doc['device']}; "
             f"timing: {doc.get('meter')}; memory: {doc.get('memory')}; {doc['created']}.", "",
             f"Method: warm-up {doc['method']['warmup']} calls, then {doc.get('rounds')} interleaved shuffled "
             f"rounds of a burst of {doc['method']['burst']} calls per (variant, batch), first "
             f"{doc['method']['settle']} of each burst uncounted. Same inputs for every variant: "
             f"{doc.get('inputs')}.", "", *_noise(doc)]
    for batch in doc["batches"]:
        lines += [f"## batch {batch}", ""] + batch_table(doc, batch) + [""]
    lines += [f"- skipped {s['target']} ({s['kind']}): {s['reason']}" for s in doc.get("skipped", [])]
    lines += [f"- note: {n}" for n in doc.get("notes", [])]
    lines += ["", f"**{verdict(doc)}**", ""]
    return "\n".join(lines)
