"""Benchmark: cold build, no-op rebuild and ``--help`` of the real ``buildsys`` CLI.

Not a test: it measures wall time of ``python -m buildsys`` subprocesses on a throwaway
text-plugin project and prints median / p90 per case, the no-op/cold ratio, whether the
targets are met, and whether the no-op rebuild's CLI process imported an ML framework
(read from ``BUILDSYS_TRACE_IMPORTS``). Stdlib only.

    python bench/noop.py                 # 3 cold builds, 15 no-op rebuilds, 15 --help
    python bench/noop.py --runs 30 --json /tmp/noop.json

Exit status 1 when a target is missed or the no-op imported an ML framework.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOOP_TARGET_S = 0.5
HELP_TARGET_S = 0.3
HEAVY = ("torch", "onnx", "onnxruntime", "tensorrt", "tensorrt_rtx", "jax", "jaxlib", "tensorflow")

MANIFEST = """\
schema: 1
name: bench
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
  lowercase:  {format: text, options: {text.normalize: {lowercase: true}}}
  ascii:      {format: text, precision: int8}
  stats:      {format: text.stats}
  stamped:    {format: text.stamped}
  native:     {format: text.bin, hardware: cpu}
  rtx-pack:   {format: text.pack, hardware: [sm86, sm89]}
"""

MODEL_TEXT = "  Hello, world.\n  Bonjour le monde — ça va?\n" * 50


# -- project and subprocess helpers ------------------------------------------------------------


def make_project(root: Path) -> Path:
    """Write the manifest and its model file; return the manifest path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.txt").write_text(MODEL_TEXT, encoding="utf-8")
    manifest = root / "manifest.yaml"
    manifest.write_text(MANIFEST, encoding="utf-8")
    return manifest


def cli_env(out: Path, trace: Path) -> dict:
    """The caller's environment, minus buildsys settings, pointed at ``out`` and ``trace``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDSYS_")}
    env.update(BUILDSYS_OUT=str(out), BUILDSYS_CACHE_DIR=str(out / ".cache"),
               BUILDSYS_TRACE_IMPORTS=str(trace))
    return env


def timed_cli(args: list[str], cwd: Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``python -m buildsys ARGS``; return (wall seconds, process). Fails loudly on error."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "buildsys", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"buildsys {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return elapsed, proc


def node_statuses(proc: subprocess.CompletedProcess) -> set[str]:
    """The set of node statuses in ``build --json`` output."""
    return {node["status"] for node in json.loads(proc.stdout)["result"]["nodes"].values()}


# -- the three cases -----------------------------------------------------------------------------


def cold_build(root: Path, manifest: Path, out: Path, trace: Path) -> float:
    """A build with an empty cache, artifact root and lockfile."""
    shutil.rmtree(out, ignore_errors=True)
    manifest.with_suffix(".lock").unlink(missing_ok=True)
    elapsed, proc = timed_cli(["build", manifest.name, "-j", "2", "--json"], root, cli_env(out, trace))
    if "built" not in node_statuses(proc):
        sys.exit(f"cold build built nothing:\n{proc.stdout}")
    return elapsed


def noop_build(root: Path, manifest: Path, out: Path, trace: Path) -> float:
    """A rebuild of unchanged inputs: every node must come from the cache."""
    elapsed, proc = timed_cli(["build", manifest.name, "-j", "2", "--json"], root, cli_env(out, trace))
    if "built" in node_statuses(proc):
        sys.exit(f"no-op rebuild built something:\n{proc.stdout}")
    return elapsed


def help_run(root: Path, out: Path, trace: Path) -> float:
    elapsed, _ = timed_cli(["--help"], root, cli_env(out, trace))
    return elapsed


def run_all(root: Path, cold_runs: int, runs: int) -> dict[str, list[float]]:
    """Each cold build is followed by its share of interleaved (no-op, --help) pairs."""
    manifest, out, traces = make_project(root / "project"), root / "out", root / "traces"
    traces.mkdir()
    help_run(root, out, traces / "warmup.jsonl")  # compile .pyc files; not measured
    times: dict[str, list[float]] = {"cold": [], "noop": [], "help": []}
    for i in range(cold_runs):
        times["cold"].append(cold_build(root / "project", manifest, out, traces / "cold.jsonl"))
        share = runs // cold_runs + (1 if i < runs % cold_runs else 0)
        for _ in range(share):
            times["noop"].append(noop_build(root / "project", manifest, out, traces / "noop.jsonl"))
            times["help"].append(help_run(root, out, traces / "help.jsonl"))
    return times


# -- import trace --------------------------------------------------------------------------------


def heavy_imports(trace: Path, process: str) -> tuple[int, list[str]]:
    """(entries of ``process`` in ``trace``, heavy top-level packages any of them imported)."""
    entries = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if e["process"] == process]
    found = {m.split(".")[0] for e in entries for m in e["modules"]} & set(HEAVY)
    return len(entries), sorted(found)


def import_report(traces: Path) -> dict:
    report = {}
    for case, process in (("noop", "cli"), ("help", "cli"), ("cold", "cli"), ("cold", "worker")):
        count, found = heavy_imports(traces / f"{case}.jsonl", process)
        report[f"{case}/{process}"] = {"entries": count, "heavy": found, "clean": count > 0 and not found}
    return report


# -- statistics and output -----------------------------------------------------------------------


def p90(samples: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summarize(times: dict[str, list[float]], imports: dict) -> dict:
    stats = {case: {"n": len(s), "median": statistics.median(s), "p90": p90(s), "samples": s}
             for case, s in times.items()}
    return {
        "python": sys.version.split()[0], "cpus": os.cpu_count(), "stats": stats,
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "ratio_noop_cold": stats["noop"]["median"] / stats["cold"]["median"],
        "targets": {"noop_le_0.5s": stats["noop"]["median"] <= NOOP_TARGET_S,
                    "help_le_0.3s": stats["help"]["median"] <= HELP_TARGET_S},
        "imports": imports,
        "noop_cli_imports_no_ml_framework": imports["noop/cli"]["clean"],
    }


def print_table(result: dict) -> None:
    stats, targets = result["stats"], result["targets"]
    print(f"{'case':<18}{'n':>4}{'median s':>11}{'p90 s':>9}  target")
    rows = (("cold build -j 2", "cold", ""),
            ("no-op rebuild", "noop", f"<= {NOOP_TARGET_S} s: {'met' if targets['noop_le_0.5s'] else 'MISSED'}"),
            ("--help", "help", f"<= {HELP_TARGET_S} s: {'met' if targets['help_le_0.3s'] else 'MISSED'}"))
    for label, case, target in rows:
        s = stats[case]
        print(f"{label:<18}{s['n']:>4}{s['median']:>11.3f}{s['p90']:>9.3f}  {target}")
    print(f"ratio no-op/cold (medians): {result['ratio_noop_cold']:.2f}")
    print(f"no-op CLI imported no ML framework: {'yes' if result['noop_cli_imports_no_ml_framework'] else 'NO'}")
    for case, r in result["imports"].items():
        print(f"  {case:<12} {r['entries']:>3} trace entries, heavy imports: {', '.join(r['heavy']) or 'none'}")
    if result["dont_write_bytecode"]:
        print("note: PYTHONDONTWRITEBYTECODE is set: every run recompiles buildsys's sources")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="no-op rebuilds and --help runs (default 15)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold builds, fresh cache each (default 3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.cold_runs < 1:
        parser.error("--runs and --cold-runs must be >= 1")
    with tempfile.TemporaryDirectory(prefix="buildsys-bench-") as tmp:
        times = run_all(Path(tmp), args.cold_runs, args.runs)
        result = summarize(times, import_report(Path(tmp) / "traces"))
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if all(result["targets"].values()) and result["noop_cli_imports_no_ml_framework"] else 1


if __name__ == "__main__":
    sys.exit(main())
