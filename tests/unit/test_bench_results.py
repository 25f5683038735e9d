"""Reading bench results: NOISY, the pick at each batch, each variant's own memory; the charts."""

from __future__ import annotations

import math

from buildsys.benchmark import results, tables
from buildsys.report import charts


def row(variant, batch, median, artifact=True, agrees=True, diff=0.0):
    return {"variant": variant, "batch": batch, "median_ms": median, "artifact": artifact, "kind": "k",
            "device": "cpu", "within_tolerance": agrees, "speedup": 1.0 / median, "max_abs_diff": diff,
            "p95_ms": median, "items_per_s": batch / median, "peak_memory_bytes": 900, "load_s": 0.5,
            "first_call_s": 0.25}


def doc(share=0.0, footprints=None):
    rows = [row("eager", 1, 1.0, artifact=False), row("a", 1, 0.2), row("b", 1, 0.3), row("wrong", 1, 0.01, agrees=False),
            row("eager", 8, 4.0, artifact=False), row("a", 8, 0.9), row("b", 8, 0.5), row("wrong", 8, 0.05, agrees=False)]
    return {"name": "m", "batches": [1, 8], "rows": rows, "baseline": "eager", "others_cpu_share": share,
            "footprints": footprints or {}}


def test_the_pick_is_made_per_batch_among_artifacts_that_agree():
    picks = {p.batch: p for p in results.picks(doc())}
    assert picks[1].row["variant"] == "a" and picks[8].row["variant"] == "b"  # 'wrong' is fastest, never picked
    assert "next b is 50.0% slower" in picks[1].why
    assert "best artifact at batch 8 is b" in tables.verdict(doc(), 8)


def test_a_noisy_run_picks_nothing_and_says_why():
    noisy = doc(share=0.4)
    assert results.noise(noisy) == "other processes used 40% of the CPUs while timing"
    for p in results.picks(noisy):
        assert p.row is None and "NOISY" in p.why
    assert "no pick: the run was NOISY" in tables.verdict(noisy, 1)
    assert results.noise(doc(share=float("nan"))) is None  # not measured is not noisy


def test_no_pick_when_no_artifact_agrees():
    d = doc()
    d["rows"] = [r for r in d["rows"] if r["variant"] in ("eager", "wrong")]
    assert results.pick(d, 1).why == "no pick: no artifact agrees with eager at batch 1 (wrong outside tolerance)"


def test_own_memory_and_cold_start_come_from_the_variant_alone_when_measured():
    alone = {"variant": "a", "baseline_bytes": 10, "load_s": 2.0, "load_peak_bytes": 70, "first_call_s": {"1": 0.125},
             "peak_bytes": {"1": 80}, "calls": 3, "source": "VmHWM"}
    d = doc(footprints={"a": alone})
    a1 = next(r for r in d["rows"] if r["variant"] == "a" and r["batch"] == 1)
    b1 = next(r for r in d["rows"] if r["variant"] == "b" and r["batch"] == 1)
    assert results.memory_bytes(d, a1) == (80, True) and results.cold_start(d, a1) == (2.0, 0.125, True)
    assert results.memory_bytes(d, b1) == (900, False) and results.cold_start(d, b1) == (0.5, 0.25, False)


def test_charts_keep_points_off_the_log_scale_on_bands():
    series = [charts.Series("exact", "#000", [(0.1, 0.0, "tip <exact>")]),
              charts.Series("off", "#111", [(0.2, math.inf, "t")], marked={0}),
              charts.Series("close", "#222", [(0.3, 1e-6, "t")])]
    svg = charts.chart("acc", "accuracy", "ms", "diff", series)
    assert svg.count("data-variant=") == 3 and "class=pickmark" in svg
    assert "tip &lt;exact&gt;" in svg and "<text" in svg and ">∞</text>" in svg and ">0</text>" in svg
    assert "http" not in svg  # inline in an HTML page, an svg needs no namespace URL
    assert "nothing to plot" in charts.chart("e", "empty", "x", "y", [charts.Series("s", "#000")])
