"""``buildsys report`` renders one self-contained page from stored bench results.

The bench results here are written by hand (two hosts: a quiet one and a NOISY one) beside
artifacts really built from the framework-free text model, so every assertion is exact; the
page of a real bench run is checked in test_bench.py.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from buildsys.artifacts import artifact_digest
from buildsys.testing.models import TINY_TEXT_FILES, tiny_text_manifest

TARGETS = {"normalized": "{format: text}", "again": "{format: text}", "stats": "{format: text.stats}",
           "rtx-pack": "{format: text.pack, hardware: [sm86, sm89]}"}


class Tables(HTMLParser):
    """Every ``<table data-table=NAME>`` of a page: rows of (cells, cell classes, row class),
    each under the ``data-host`` of the section it is in."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[tuple[str | None, str], list] = {}
        self.host = self.current = self.row = self.cell = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.host = a.get("data-host")
        elif tag == "table":
            self.current = self.tables.setdefault((self.host, a["data-table"]), [])
        elif tag == "tr" and self.current is not None:
            self.row = ([], [], a.get("class") or "")
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
            self.row[1].append(a.get("class") or "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row[0].append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.current.append(self.row)
            self.row = None
        elif tag == "table":
            self.current = None
        elif tag == "section":
            self.host = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def rows(self, host, name) -> list[dict]:
        """The table's body rows as {header: (text, class)} plus '_row': the row's class."""
        head, *body = self.tables[(host, name)]
        return [dict(zip(head[0], zip(cells, classes)), _row=cls) for cells, classes, cls in body]


def row(variant, batch, median, artifact=True, agrees=True, diff=0.0, kind="text"):
    return {"variant": variant, "batch": batch, "kind": kind if artifact else "reference", "artifact": artifact,
            "device": "cpu", "precision": "fp32", "n": 20, "median_ms": median, "p95_ms": median * 1.2,
            "items_per_s": batch / (median / 1e3), "speedup": 0.5 / median, "max_abs_diff": diff,
            "within_tolerance": agrees, "peak_memory_bytes": 400_000_000, "kernels": None, "load_s": 0.01,
            "first_call_s": 0.002}


def footprint(variant, load_peak, peak1, peak8):
    return {"variant": variant, "baseline_bytes": 40_000_000, "load_s": 1.5, "load_peak_bytes": load_peak,
            "first_call_s": {"1": 0.25, "8": 0.0125}, "peak_bytes": {"1": peak1, "8": peak8}, "calls": 3,
            "source": "VmHWM, reset before each phase"}


def bench_doc(host: str, share: float, records: dict, separate: bool) -> dict:
    rows = [row("normalized", 1, 0.10), row("again", 1, 0.20), row("fast-but-wrong", 1, 0.01, agrees=False, diff=1.0),
            row("normalized", 8, 0.90), row("again", 8, 0.40), row("fast-but-wrong", 8, 0.05, agrees=False, diff=1.0)]
    artifacts = {t: {"kind": "text", "precision": "fp32", "hardware": "any",
                     "action_key": records[t]["chain"][-1]["action_key"]} for t in ("normalized", "again")}
    prints = {"normalized": footprint("normalized", 11_000_000, 12_000_000, 13_000_000),
              "again": footprint("again", 21_000_000, 22_000_000, 23_000_000)} if separate else {}
    return {"schema": 2, "name": "tiny", "version": "1.0.0", "manifest": "manifest.yaml", "device": "cpu",
            "host": {"id": host, "hostname": host, "cpu_tag": "cpu-x86_64-avx2", "cpu_model": "Test CPU 9000",
                     "gpus": []},
            "tools": {"buildsys-text": "0.1.0"}, "created": "2026-01-01T00:00:00Z", "batches": [1, 8],
            "method": {"warmup": 1, "burst": 2, "settle": 0}, "rounds": 2, "meter": "wall clock", "memory": "host peak RSS",
            "artifacts": artifacts, "memory_mode": "separate" if separate else "shared", "footprints": prints,
            "skipped": [{"target": "stats", "kind": "text.stats", "reason": "no runner for kind text.stats"},
                        {"target": "boom", "kind": "fixture.crashy", "failed": True,
                         "reason": "the runtime crashed the process while loading it (signal SIGSEGV)"}],
            "notes": ["no GPU on this host"], "rows": rows, "baseline": "normalized",
            "inputs": {"1": [{"name": "text", "dtype": "str", "shape": [1]}]}, "others_cpu_share": share}


def test_the_report_is_one_self_contained_page_with_picks_memory_cold_start_and_provenance(buildsys_project):
    buildsys_project.manifest(tiny_text_manifest(TARGETS), files=TINY_TEXT_FILES)
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    folder = buildsys_project.out / "tiny" / "1.0.0"
    records = {t: json.loads((folder / t / "artifact.json").read_text()) for t in TARGETS}
    (folder / "bench-quiet.json").write_text(json.dumps(bench_doc("quiet", 0.01, records, separate=True)))
    (folder / "bench-busy.json").write_text(json.dumps(bench_doc("busy", 0.40, records, separate=False)))
    buildsys_project.cli("report", "manifest.yaml", "-o", "rep").assert_ok()
    page = (buildsys_project.root / "rep" / "report.html").read_text()
    tables = Tables(page)

    # one file: charts inline, nothing fetched or linked
    assert "http://" not in page and "https://" not in page and "<img" not in page and "<link" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!data:|#)""", page)
    assert "<script>" in page and "table.sortable" in page and 'class=sortable' in page
    for host in ("quiet", "busy"):
        section = page[page.index(f'data-host="{host}"'):]
        for chart in ("latency", "accuracy-1", "size-1", "accuracy-8", "size-8"):
            assert f'<svg class=chart data-chart="{chart}"' in section
    latency = page[page.index('data-chart="latency"'):]
    latency = latency[:latency.index("</svg>")]
    assert {"normalized", "again", "fast-but-wrong"} == set(re.findall(r'data-variant="([^"]+)"', latency))

    # a pick per batch where it was quiet; none, and why, where it was NOISY
    quiet = {r["batch"][0]: r for r in tables.rows("quiet", "picks")}
    assert quiet["1"]["pick"][0].startswith("normalized") and quiet["8"]["pick"][0].startswith("again")
    assert all(r["_row"] == "pick" for r in quiet.values())
    busy = tables.rows("busy", "picks")
    assert [r["pick"][0] for r in busy] == ["no pick", "no pick"] and all("NOISY" in r["why"][0] for r in busy)
    assert "data-noisy" in page[page.index('data-host="busy"'):] and "data-noisy" not in \
        page[page.index('data-host="quiet"'):page.index('data-host="busy"')]
    assert not [r for r in tables.rows("busy", "results") if r["_row"] == "pick"]
    wrong = [r for r in tables.rows("quiet", "results") if r["variant"][0] == "fast-but-wrong"]
    assert [r["agrees"] for r in wrong] == [("WRONG", "fail")] * 2 and not any(r["_row"] for r in wrong)

    # each variant's own memory where measured alone; the shared peak, labelled so, where not
    own = {(r["variant"][0], r["batch"][0]): r for r in tables.rows("quiet", "results")}
    assert own[("normalized", "1")]["own memory MB"][0] == "12.0" and own[("again", "8")]["own memory MB"][0] == "23.0"
    assert own[("fast-but-wrong", "1")]["own memory MB"][0] == "400.0"  # not measured alone: the shared reading
    assert tables.rows("busy", "results")[0]["peak RSS MB (shared)"][0] == "400.0"

    # cold start: load and first call, from the fresh process where there was one
    cold = {r["variant"][0]: r for r in tables.rows("quiet", "cold-start")}
    assert cold["again"]["load"][0] == "1.50 s" and cold["again"]["first call (batch 1)"][0] == "250.0 ms"
    assert cold["again"]["to first result"][0] == "1.75 s" and cold["again"]["memory after load MB"][0] == "21.0"
    assert cold["again"]["measured in"][0] == "a fresh process (cold)"
    assert tables.rows("busy", "cold-start")[0]["measured in"][0] == "the shared timing process"
    assert own[("again", "1")]["first call"][0] == "250.0 ms"

    # not run is grey, a crash is red; a validation that did not run (text has no reference) is grey too
    skipped = {r["target"][0]: r["status"] for r in tables.rows("quiet", "skipped")}
    assert skipped == {"stats": ("not run", "neutral"), "boom": ("failed", "fail")}
    artifacts = {r["target"][0]: r for r in tables.rows(None, "artifacts")}
    assert {r["validation"] for r in artifacts.values()} == {("not run", "neutral")}
    assert artifacts["stats"]["why not validated"][0] == records["stats"]["validation"]["reason"]

    # provenance: the digest of each artifact.json, its tools, the bench host's CPU model
    digests = dict(re.findall(r'<code class=digest data-target="([^"]+)">([^<]+)</code>', page))
    assert digests == {t: artifact_digest(r) for t, r in records.items()}
    provenance = {r["target"][0]: r for r in tables.rows(None, "provenance")}
    for target, record in records.items():  # the text plugin's stages record no tool versions: "-"
        tools = ", ".join(f"{k} {v}" for k, v in sorted(record["runtime"].items())) or "-"
        assert provenance[target]["tools"][0] == tools
    assert provenance["rtx-pack"]["kind / precision / hardware"][0].endswith(records["rtx-pack"]["hardware"])
    assert "Test CPU 9000" in page


def test_a_result_that_measured_other_builds_says_so(buildsys_project):
    buildsys_project.manifest(tiny_text_manifest(TARGETS), files=TINY_TEXT_FILES)
    buildsys_project.cli("build", "manifest.yaml", "-t", "normalized", "-t", "again").assert_ok()
    folder = buildsys_project.out / "tiny" / "1.0.0"
    records = {t: json.loads((folder / t / "artifact.json").read_text()) for t in ("normalized", "again")}
    doc = bench_doc("quiet", 0.0, records, separate=True)
    doc["artifacts"]["again"]["action_key"] = "an-older-build"
    (folder / "bench-quiet.json").write_text(json.dumps(doc))
    buildsys_project.cli("report", "manifest.yaml", "-o", "rep").assert_ok()
    page = (buildsys_project.root / "rep" / "report.html").read_text()
    assert "This result measured other builds: again was built again since" in page
