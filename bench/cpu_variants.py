"""Benchmark: eager vs torch.compile vs every artifact buildsys ships, on this CPU.

A thin caller of the product: ``buildsys bench`` (``buildsys/benchmark/``) does the measuring.
For each example manifest it

1. copies the manifest's folder (minus lockfiles) into a temporary project and builds it cold
   with the real CLI (``python -m buildsys build MANIFEST -j 2 -k --json``): fresh artifact root,
   cache and Inductor cache, so the repository's artifacts/ and *.lock stay untouched. Build
   time per stage comes from each target's ``artifact.json`` ``chain[*].seconds``;
2. runs ``python -m buildsys bench MANIFEST --json`` there: eager, ``torch.compile`` and every
   built target with a runner, the same inputs, warm-up, interleaved shuffled bursts, medians /
   p95, ratio vs eager, max abs difference from eager (see ``buildsys bench --help``);
3. writes bench/results/bench_cpu_<manifest>.{md,json}: the build stages, the bench tables
   and the verdict: best artifact >= 2x eager at batch 1 (issue 3).

    python bench/cpu_variants.py                                  # both examples
    python bench/cpu_variants.py --manifests manifests/cnn.yaml --seconds 60
    python bench/cpu_variants.py --workdir /tmp/cpu-bench          # keep the build; reruns are no-ops

Exit status 1 when the target is missed on any manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from buildsys.benchmark import tables
from buildsys.benchmark.measure import best_artifact

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DEFAULT_MANIFESTS = ("manifests/cnn.yaml", "manifests/encoder.yaml")
TARGET_SPEEDUP = 2.0


# -- build ---------------------------------------------------------------------------------------


def copy_project(manifest: Path, dest: Path) -> Path:
    """Copy the manifest's folder (models, data; no lockfiles) to ``dest``; return the copy."""
    shutil.copytree(manifest.parent, dest, ignore=shutil.ignore_patterns("*.lock", "__pycache__"),
                    dirs_exist_ok=True)
    return dest / manifest.name


def build(manifest: Path, work: Path) -> dict:
    """Build with the real CLI into ``work`` (-k: a failing stage does not hide the other targets).

    Returns the wall time, node statuses, failures and the built targets' directories.
    """
    env = dict(os.environ, BUILDSYS_OUT=str(work / "out"), BUILDSYS_CACHE_DIR=str(work / "cache"),
               TORCHINDUCTOR_CACHE_DIR=str(work / "inductor"))
    command = [sys.executable, "-m", "buildsys", "build", manifest.name, "-j", "2", "-k", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=manifest.parent, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        sys.exit(f"buildsys build {manifest.name} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout)["result"]  # the JSON envelope's result
    nodes = summary["nodes"]
    targets = {t: d for t, d in summary["targets"].items() if (Path(d) / "artifact.json").is_file()}
    failed = {name: n["error"] for name, n in nodes.items() if n["status"] == "failed"}
    return {"command": " ".join(command[1:]), "wall_s": wall, "statuses": sorted({n["status"] for n in nodes.values()}),
            "nodes": nodes, "failed": failed, "targets": targets}


def stage_times(built: dict) -> list[dict]:
    """One row per build node found in the targets' artifact.json chains (shared nodes once)."""
    rows: dict[str, dict] = {}
    for target, directory in built["targets"].items():
        for step in json.loads((Path(directory) / "artifact.json").read_text())["chain"]:
            if "seconds" not in step:
                continue  # the source: resolved, not built
            row = rows.setdefault(step["node"], {"stage": step["stage"], "node": step["node"],
                                                 "seconds": step["seconds"], "targets": []})
            row["targets"].append(target)
    validate = [n for name, n in built["nodes"].items() if name.startswith("validate#")]
    if validate:
        rows["validate"] = {"stage": "validate", "node": f"{len(validate)} nodes (node wall, --json)",
                            "seconds": sum(n["seconds"] for n in validate), "targets": ["all"]}
    return list(rows.values())


def stage_table(result: dict) -> list[str]:
    build = result["build"]
    lines = [f"| stage | node | seconds | targets |", "|---|---|---:|---|"]
    lines += [f"| {r['stage']} | {r['node']} | {r['seconds']:.2f} | {', '.join(r['targets'])} |"
              for r in build["stages"]]
    lines.append(f"| **cold build wall** (-j 2) | nodes {', '.join(build['statuses'])} | {build['wall_s']:.2f} | |")
    return lines


def bench(manifest: Path, work: Path, args) -> dict:
    """``buildsys bench`` in the built project; returns its JSON result document."""
    env = dict(os.environ, BUILDSYS_OUT=str(work / "out"), BUILDSYS_CACHE_DIR=str(work / "cache"),
               TORCHINDUCTOR_CACHE_DIR=str(work / "inductor-bench"))
    command = [sys.executable, "-m", "buildsys", "bench", manifest.name, "--json", "--batch", args.batches,
               "--seconds", str(args.seconds), "--burst", str(args.burst), "--settle", str(args.settle),
               "--warmup", str(args.warmup), "--wait-quiet", str(args.wait_quiet)]
    proc = subprocess.run(command, cwd=manifest.parent, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"buildsys bench {manifest.name} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)["result"]  # the JSON envelope's result


def verdict_line(doc: dict) -> tuple[str, bool]:
    best = best_artifact(doc["rows"], 1)
    met = best is not None and best["speedup"] >= TARGET_SPEEDUP
    return tables.verdict(doc) + f" — target >= {TARGET_SPEEDUP:.0f}x {'met' if met else 'MISSED'}", met


def run_manifest(path: Path, work: Path, args) -> bool:
    print(f"== {path} — building cold into {work}", flush=True)
    copy = copy_project(path, work / "project")
    built = build(copy, work)
    doc = bench(copy, work, args)
    result = {"build": dict(built, stages=stage_times(built)), "bench": doc}
    line, met = verdict_line(doc)
    text = "\n".join([tables.render(doc), "## build (cold, -j 2)", "", *stage_table(result),
                      *[f"- build failed: {n}: {e.splitlines()[0][:300]}" for n, e in built["failed"].items()],
                      "", f"**{line}**", ""])
    print(text, flush=True)
    if not args.no_save:
        (RESULTS / f"bench_cpu_{path.stem}.md").write_text(text)
        (RESULTS / f"bench_cpu_{path.stem}.json").write_text(json.dumps(result, indent=1, default=str))
    return met


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", nargs="+", type=Path, default=[Path(m) for m in DEFAULT_MANIFESTS])
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed phase per manifest")
    parser.add_argument("--burst", type=int, default=30, help="back-to-back calls per variant, batch and round")
    parser.add_argument("--settle", type=int, default=15, help="first calls of each burst not counted")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per variant and batch")
    parser.add_argument("--wait-quiet", type=float, default=120.0, help="wait for other processes to go idle")
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: a temp dir, removed)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/bench_cpu_*")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="buildsys-cpu-bench-") as tmp:
        root = args.workdir.resolve() if args.workdir else Path(tmp)
        met = [run_manifest(m.resolve(), root / m.stem, args) for m in args.manifests]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
