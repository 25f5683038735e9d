"""Benchmark: planning time against the number of targets, two source trees side by side.

Not a test. Each measurement runs in a fresh subprocess that imports buildsys (and its
first-party plugins) from the tree it is given, so one run compares the code before a change
with the code after it:

- **in memory**: ``buildsys.plan.plan()`` and then what ``buildsys plan`` does with the graph
  (``Graph.select`` of every target, ``targets_of`` of every node), on a ``Manifest`` made in
  memory with 100 / 1,000 / 10,000 targets of the framework-free ``text`` plugin (the loader
  refuses more than 1,000). Two shapes: ``wide`` (independent targets over five formats,
  distinct options) and ``deep`` (each target builds ``from:`` the one before it, one more
  stage each);
- **CLI**: wall time of ``python -m buildsys plan`` on the same manifests with 1,000 targets,
  written as YAML (interpreter start, plugin loading and YAML parsing included).

    git worktree add /work/wt-plan-before 1fa719a
    python bench/plan_scaling.py --before /work/wt-plan-before --out bench/results/plan_scaling.md

A case that runs past ``--timeout`` is reported as such. Stdlib only in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
FORMATS = ("text", "text.stats", "text.pack", "text.bin", "text.stamped")


# -- the workload (built the same way in every tree) -----------------------------------------


def wide(n: int) -> dict[str, dict]:
    """``n`` independent targets cycling over five formats, most with options of their own."""
    targets = {}
    for i in range(n):
        fmt = FORMATS[i % len(FORMATS)]
        options = {"text.normalize": {"lowercase": bool(i % 2)}}
        if fmt == "text.stats":
            options["text.wordcount"] = {"delay": i / 100_000}
        targets[f"t{i}"] = {"format": fmt, "options": options} | ({"hardware": "cpu"} if fmt == "text.bin" else {})
    return targets


def deep(n: int) -> dict[str, dict]:
    """A chain of ``n`` targets, each one ``text.ascii`` step ``from:`` the one before it."""
    targets = {"t0": {"format": "text"}}
    for i in range(1, n):
        targets[f"t{i}"] = {"format": "text", "precision": "int8", "pipeline": ["text.ascii"], "from": f"t{i - 1}"}
    return targets


SHAPES = {"wide": wide, "deep": deep}


def yaml_manifest(targets: dict[str, dict]) -> str:
    lines = ["schema: 1", "name: bench", "version: '1'", "model: {framework: text, entrypoint: model.txt}", "targets:"]
    lines += [f"  {name}: {json.dumps(target)}" for name, target in targets.items()]  # JSON is flow YAML
    return "\n".join(lines) + "\n"


# -- the child: one measurement in one tree ----------------------------------------------------


def child(tree: Path, shape: str, size: int, repeat: int) -> dict:
    import buildsys
    import buildsys_text
    from buildsys import plugins
    from buildsys.manifest import Manifest, ModelSpec, Target
    from buildsys.plan import plan
    from buildsys.project import probe_host

    for module in (buildsys, buildsys_text):
        assert Path(module.__file__).resolve().is_relative_to(tree), f"{module.__name__} not from {tree}"
    root = Path(tempfile.mkdtemp(prefix="plan_scaling_"))
    (root / "model.txt").write_text("hello\n")
    manifest = Manifest.model_construct(
        schema_=1, name="bench", version="1", description=None, calibration=None, validation={},
        model=ModelSpec(framework="text", entrypoint="model.txt"),
        targets={name: Target.model_validate(t) for name, t in SHAPES[shape](size).items()})
    manifest._path, manifest._positions = root / "bench.yaml", {}
    pm = plugins.load(plugins.PluginConfig())
    catalog, host = plugins.Catalog.collect(pm), probe_host(pm)
    times, graph = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        graph = plan(manifest, catalog, host)
        selected = graph.select(list(manifest.targets))
        for node_id in selected.nodes:
            selected.targets_of(node_id)
        times.append(time.perf_counter() - started)
    return {"seconds": min(times), "nodes": len(graph.nodes), "refused": len(graph.refused)}


# -- the parent: run every case in every tree ------------------------------------------------


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(tree / "plugins")]))
    env.pop("BUILDSYS_TRACE_IMPORTS", None)
    return env


def in_memory(tree: Path, shape: str, size: int, timeout: float) -> dict:
    repeat = 3 if size <= 1_000 else 1
    argv = [sys.executable, str(HERE), "--child", str(tree), shape, str(size), str(repeat)]
    try:
        done = subprocess.run(argv, env=environment(tree), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s (stopped)"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {last[:80]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli(tree: Path, manifest: Path, runs: int, timeout: float) -> dict:
    times, codes = [], set()
    env = dict(environment(tree), BUILDSYS_OUT=str(manifest.parent / "out"))
    for _ in range(runs):
        started = time.perf_counter()
        try:
            done = subprocess.run([sys.executable, "-m", "buildsys", "plan", str(manifest)], env=env,
                                  cwd=manifest.parent, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"> {timeout:.0f} s (stopped)"}
        times.append(time.perf_counter() - started)
        codes.add(done.returncode)
        if done.returncode not in (0, 3):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {done.returncode}: {last[:70]}"}
    return {"seconds": statistics.median(times), "exit": sorted(codes)}


def cell(result: dict) -> str:
    return result["error"] if "error" in result else f"{result['seconds']:.3f}"


def ratio(before: dict, after: dict) -> str:
    if "seconds" not in after:
        return "-"
    if "seconds" not in before:
        return "before did not finish"
    return f"{before['seconds'] / after['seconds']:.1f}x faster"


def per_target(result: dict, size: int) -> str:
    return f"{result['seconds'] / size * 1e6:.0f}" if "seconds" in result else "-"


def run_in_memory(trees: dict[str, Path], sizes: list[int], timeout: float) -> list[str]:
    rows = ["| shape | targets | nodes | before (s) | after (s) | before / after | after, µs per target |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for shape in SHAPES:
        for size in sizes:
            got = {label: in_memory(tree, shape, size, timeout) for label, tree in trees.items()}
            nodes = got["after"].get("nodes", got["before"].get("nodes", "?"))
            rows.append(f"| {shape} | {size:,} | {nodes} | {cell(got['before'])} | {cell(got['after'])} | "
                        f"{ratio(got['before'], got['after'])} | {per_target(got['after'], size)} |")
            print(rows[-1], flush=True)
    return rows


def run_cli(trees: dict[str, Path], size: int, runs: int, timeout: float) -> list[str]:
    rows = ["| manifest | targets | before (s) | after (s) | before / after |", "|---|---:|---:|---:|---:|"]
    work = Path(tempfile.mkdtemp(prefix="plan_scaling_cli_"))
    (work / "model.txt").write_text("hello\n")
    cases = {"wide": wide(size), "deep": deep(size),
             "deep, children listed first": dict(reversed(deep(size).items()))}
    for label, targets in cases.items():
        manifest = work / f"{label.split(',')[0]}{'-rev' if ',' in label else ''}.yaml"
        manifest.write_text(yaml_manifest(targets))
        got = {name: cli(tree, manifest, runs, timeout) for name, tree in trees.items()}
        rows.append(f"| {label} | {size:,} | {cell(got['before'])} | {cell(got['after'])} | "
                    f"{ratio(got['before'], got['after'])} |")
        print(rows[-1], flush=True)
    return rows


def revision(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip()[:90] + (" (+ uncommitted changes)" if dirty else "")


def report(trees: dict[str, Path], args, memory: list[str], command: list[str], seconds: float) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = ["# Planning time against the number of targets", "",
            f"`python bench/plan_scaling.py --before {trees['before']} --after {trees['after']}` "
            f"({seconds / 60:.1f} min). Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {load:.1f} at the end (the machine is shared: read the ratios, not the digits).", ""]
    head += [f"- {label}: `{tree}` at {revision(tree)}" for label, tree in trees.items()]
    memory_note = ["", "## In memory: `plan()` + `Graph.select(all)` + `targets_of(every node)`", "",
                   "Best of 3 runs (1 run at 10,000 targets); the text plugin's stages, no ML framework.", ""]
    cli_note = ["", f"## `buildsys plan` on a YAML manifest of {args.cli_size:,} targets (the loader allows 1,000)", "",
                f"Median wall time of {args.cli_runs} run(s) of the whole command, interpreter start and "
                "YAML parsing included.", ""]
    return "\n".join(head + memory_note + memory + cli_note + command) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the tree to compare against")
    parser.add_argument("--after", type=Path, default=HERE.parents[1], help="default: this script's tree")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--cli-size", type=int, default=1_000)
    parser.add_argument("--cli-runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case and tree")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    started = time.perf_counter()
    memory = run_in_memory(trees, args.sizes, args.timeout)
    command = run_cli(trees, args.cli_size, args.cli_runs, args.timeout)
    text = report(trees, args, memory, command, time.perf_counter() - started)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        tree, shape, size, repeat = sys.argv[2:6]
        print(json.dumps(child(Path(tree).resolve(), shape, int(size), int(repeat))))
    else:
        sys.exit(main())
