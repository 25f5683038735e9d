"""Reading a stored bench result: was the machine quiet, what to pick at each batch, and each
variant's own memory and cold start. The terminal tables and the report page both read
results through these, so they cannot disagree. Takes documents of every schema (1 has no
footprints).
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import Footprint

#: Above this share of the CPUs used by other processes while timing, a run is NOISY.
NOISY_SHARE = 0.05


def noise(doc: dict) -> str | None:
    """Why the run's timings cannot be trusted for a choice (None when the machine was quiet)."""
    share = doc.get("others_cpu_share")
    if share is None or not share > NOISY_SHARE:  # NaN: not measured
        return None
    return f"other processes used {share:.0%} of the CPUs while timing"


@dataclass(frozen=True)
class Pick:
    """The artifact to pick at one batch, or None; ``why`` says which rule decided."""

    batch: int
    row: dict | None
    why: str
    runner_up: dict | None = None


def pick(doc: dict, batch: int) -> Pick:
    """The fastest artifact (median) whose outputs agree with the baseline at ``batch`` — none
    when the run was NOISY: a ranking measured while others used the CPUs is not a choice."""
    baseline = doc.get("baseline", "eager")
    noisy = noise(doc)
    if noisy:
        return Pick(batch, None, f"no pick: the run was NOISY ({noisy}); rerun on a quiet machine "
                                 "(bench --wait-quiet 60) before choosing")
    artifacts = [r for r in doc["rows"] if r["batch"] == batch and r["artifact"]]
    agreeing = sorted((r for r in artifacts if r["within_tolerance"]), key=lambda r: r["median_ms"])
    if not agreeing:
        wrong = ", ".join(r["variant"] for r in artifacts)
        return Pick(batch, None, f"no pick: no artifact agrees with {baseline} at batch {batch}"
                                 + (f" ({wrong} outside tolerance)" if wrong else " (none was timed)"))
    best, runner_up = agreeing[0], (agreeing[1] if len(agreeing) > 1 else None)
    why = f"fastest artifact that agrees with {baseline} at batch {batch}: {best['median_ms']:.3f} ms"
    if best.get("speedup"):
        why += f", {best['speedup']:.2f}x {baseline}"
    if runner_up:
        why += f"; next {runner_up['variant']} is {runner_up['median_ms'] / best['median_ms'] - 1:.1%} slower"
    return Pick(batch, best, why, runner_up)


def picks(doc: dict) -> list[Pick]:
    return [pick(doc, batch) for batch in doc["batches"]]


def footprint(doc: dict, variant: str) -> Footprint | None:
    """``variant`` measured alone in a fresh process (None: shared mode, or not measured)."""
    data = (doc.get("footprints") or {}).get(variant)
    return Footprint.from_json(data) if data else None


def memory_bytes(doc: dict, row: dict) -> tuple[int | None, bool]:
    """(the memory to show for ``row``, whether it is the variant's own): its own peak over the
    baseline when it was measured alone, else the shared process's peak (every variant loaded
    before it included)."""
    own = footprint(doc, row["variant"])
    if own is not None:
        return own.peak_bytes.get(row["batch"]), True
    return row.get("peak_memory_bytes"), False


def cold_start(doc: dict, row: dict) -> tuple[float, float, bool]:
    """(load s, first call s at the row's batch, whether from a fresh process)."""
    own = footprint(doc, row["variant"])
    if own is not None and row["batch"] in own.first_call_s:
        return own.load_s, own.first_call_s[row["batch"]], True
    return row.get("load_s", 0.0), row.get("first_call_s", 0.0), False


def memory_method(doc: dict) -> str:
    if doc.get("footprints"):
        return ("host memory: each variant alone in a fresh process, peak RSS over the process's baseline "
                "(Python, numpy, buildsys and the plugins loaded; the variant's runtime import counts); "
                "load and first call from that process (cold)")
    return (f"memory: {doc.get('memory', 'host peak RSS')} in the one process that times every variant: "
            "each peak includes every variant loaded before it (bench --memory separate measures each alone)")
