"""Benchmark: eager vs torch.compile vs every artifact buildsys ships, on this CPU.

Not a test. For each example manifest it

1. copies the manifest's folder (minus lockfiles) into a temporary project and builds it cold
   with the real CLI (``python -m buildsys build MANIFEST -j 2 -k --json``): fresh artifact root,
   cache and Inductor cache, so the repository's artifacts/ and *.lock stay untouched. Build
   time per stage comes from each target's ``artifact.json`` ``chain[*].seconds``;
2. loads the variants: ``eager`` (the module from the torch plugin's registered source loader,
   under ``torch.no_grad()``), ``torch.compile`` (default mode) of that module, and every built
   target whose kind has a registered runner, loaded through that ``RunnerSpec`` exactly as
   validation loads it. Every variant takes and returns numpy arrays, like the runners;
3. feeds every variant the same arrays (manifest dtypes; every dim at its opt, batch 1 and 8;
   seed 0), warms each up per batch (the first call, torch.compile's compile, is reported
   apart), waits for the machine to go quiet, then interleaves: every round runs each
   (variant, batch) once, as a short burst of back-to-back calls whose first ``--settle`` are
   not counted, in a seeded shuffled order, so drift hits every variant alike (why bursts:
   ``interleave``);
4. prints median / p95 latency, items/s, speedup vs eager (eager median / variant median) and
   the max abs difference from eager's outputs, and the verdict: best artifact >= 2x eager at
   batch 1 (issue 3).

    python bench/cpu_variants.py                                  # both examples, ~30 s timed each
    python bench/cpu_variants.py --manifests manifests/cnn.yaml --rounds 500 --json /tmp/r.json
    python bench/cpu_variants.py --workdir /tmp/cpu-bench          # keep the build; reruns are no-ops

Results go to bench/results/cpu_variants.{json,md} (and --json PATH). Threads: torch intra-op
threads = os.cpu_count(); ONNX Runtime sessions keep the runner's defaults; the output says
what was set, and how much CPU other processes took while timing. Exit status 1 when the
target is missed on any manifest.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DEFAULT_MANIFESTS = ("manifests/cnn.yaml", "manifests/encoder.yaml")
TARGET_SPEEDUP = 2.0
SEED = 0


@dataclass
class Variant:
    """One way of running the model: numpy arrays in, numpy arrays out."""

    name: str
    kind: str
    run: Callable[[list[np.ndarray]], list[np.ndarray]]
    artifact: bool = False
    load_s: float = 0.0
    first_call_s: dict[int, float] = field(default_factory=dict)
    warm_s: dict[int, float] = field(default_factory=dict)  # median of the warm-up calls


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
    nodes = json.loads(proc.stdout)["nodes"]
    targets = {t: d for t, d in json.loads(proc.stdout)["targets"].items() if (Path(d) / "artifact.json").is_file()}
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


# -- inputs and variants -------------------------------------------------------------------------


def make_inputs(model, batch: int, seed: int = SEED) -> list[np.ndarray]:
    """The manifest's inputs with every dim at its opt, batch at ``batch``; dtype as declared."""
    from buildsys_torch.inputs import dim_bounds, make_tensor, shape_for

    sizes = {name: opt for name, (_, opt, _) in dim_bounds(model).items()}
    sizes["batch"] = batch
    generator = torch.Generator().manual_seed(seed)
    return [make_tensor(spec, shape_for(spec, sizes), generator).numpy() for spec in model.inputs]


def torch_runner(module) -> Callable:
    """A numpy-in/numpy-out call of ``module`` under no_grad, converting like the torch runners."""
    from buildsys_torch.flat import flatten
    from buildsys_torch.runtime import to_numpy, to_tensors

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(module(*to_tensors(arrays, "cpu")))]

    return run


def source_variants(specs, manifest) -> list[Variant]:
    """eager: the registered source loader's module; torch.compile (default mode) of it."""
    started = time.perf_counter()
    module = specs.sources[manifest.model.framework].load(manifest.model, manifest.root)
    eager = Variant("eager", "torch.module", torch_runner(module), load_s=time.perf_counter() - started)
    compiled = torch.compile(module)  # compiles on first call, timed as first_call_s
    return [eager, Variant("torch.compile", "torch.module", torch_runner(compiled))]


def input_artifact(directory: Path):
    """The ``InputArtifact`` a runner gets for a built target, from its artifact.json."""
    from buildsys import InputArtifact

    info = json.loads((directory / "artifact.json").read_text())
    files = {f["name"]: directory / f["name"] for f in info["files"]}
    primary = next((f["name"] for f in info["files"] if f.get("role") == "primary"), None)
    return InputArtifact(kind=info["kind"], precision=info["precision"], hardware=info["hardware"],
                         directory=directory, files=files, meta=dict(info["meta"], primary=primary))


def artifact_variants(specs, targets: dict[str, str], host_tags: set[str]) -> tuple[list[Variant], list[str]]:
    """Every built target whose kind has a usable runner and whose hardware this host has."""
    variants, skipped = [], []
    for target, directory in targets.items():
        artifact = input_artifact(Path(directory))
        runner = specs.runners.get(artifact.kind)
        reason = runnable(runner, artifact, host_tags)
        if reason:
            skipped.append(f"{target} ({artifact.kind}): {reason}")
            continue
        started = time.perf_counter()
        run = runner.load(artifact, "cpu")
        variants.append(Variant(f"{target}", artifact.kind, run, artifact=True,
                                load_s=time.perf_counter() - started))
    return variants, skipped


def runnable(runner, artifact, host_tags: set[str]) -> str:
    """Why ``artifact`` cannot run here ('' when it can)."""
    if runner is None:
        return "no runner registered for this kind"
    if artifact.hardware != "any" and artifact.hardware not in host_tags:
        return f"built for {artifact.hardware}, this host is {sorted(host_tags)}"
    for requirement in runner.requires:
        if requirement.installed_version() is None:
            return f"runner needs {requirement.distribution}"
    return ""


# -- measurement ---------------------------------------------------------------------------------


def timed(run: Callable, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    started = time.perf_counter()
    outputs = run(arrays)
    return time.perf_counter() - started, outputs


def max_abs_diff(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Largest |variant - eager| over all outputs (inf when the outputs do not line up)."""
    if len(outputs) != len(reference) or any(np.shape(a) != np.shape(b) for a, b in zip(outputs, reference)):
        return float("inf")
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
               for a, b in zip(outputs, reference))


def warm_up(variants: list[Variant], inputs: dict[int, list], calls: int) -> tuple[dict, dict]:
    """First call per (variant, batch) timed apart (compile), then ``calls`` warm-up calls
    (their median sizes the timed phase; they are not part of the results).

    Returns eager's outputs per batch and each variant's max abs diff from them per batch.
    """
    reference, diffs = {}, {}
    for variant in variants:  # eager is first: its outputs are the reference
        for batch, arrays in inputs.items():
            variant.first_call_s[batch], outputs = timed(variant.run, arrays)
            reference.setdefault(batch, outputs)
            diffs[(variant.name, batch)] = max_abs_diff(outputs, reference[batch])
            variant.warm_s[batch] = float(np.median([timed(variant.run, arrays)[0] for _ in range(max(1, calls))]))
    return reference, diffs


def auto_rounds(variants: list[Variant], burst: int, seconds: float) -> int:
    """Rounds that make the timed phase last about ``seconds``, from the warm-up medians."""
    round_s = burst * sum(s for v in variants for s in v.warm_s.values())
    return int(min(5000, max(20, seconds / max(round_s, 1e-6))))


def cpu_counters() -> tuple[float, float, float]:
    """(wall s, CPU s busy on the whole machine, CPU s used by this process) right now."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    own = os.times()
    return time.perf_counter(), (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def others_share(before: tuple, after: tuple) -> float:
    """Share of all CPUs that other processes used between two ``cpu_counters()`` readings."""
    wall, busy, own = (b - a for a, b in zip(before, after))
    return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def wait_for_quiet(limit_s: float, threshold: float = 0.05) -> float:
    """Wait (up to ``limit_s``) for a second in which other processes use < ``threshold`` of
    the CPUs; return the last share seen. A shared 2-core VM is otherwise unmeasurable."""
    deadline = time.perf_counter() + limit_s
    while True:
        before = cpu_counters()
        time.sleep(1.0)
        share = others_share(before, cpu_counters())
        if share < threshold or time.perf_counter() > deadline:
            return share


def interleave(variants: list[Variant], inputs: dict[int, list], rounds: int, burst: int, settle: int) -> dict:
    """Each round runs every (variant, batch) once, as a burst of ``burst`` back-to-back calls,
    in a seeded shuffle; the first ``settle`` calls of a burst are not counted. GC off meanwhile.

    Why bursts: on a small CPU the previous variant's thread pool is still spinning when the
    next one starts (ONNX Runtime's workers after Run; torch's OpenMP workers after a parallel
    region), so a torch variant run right after ORT is slowed for 1-2 calls and ORT run right
    after torch for up to ~10-20 calls (measured on this 2-vCPU host). That is interference
    between runtimes in one process, not a property of either; counting only the second half of
    each burst measures each variant in its steady state (see ``--burst 1 --settle 0``).
    """
    rng = random.Random(SEED)
    jobs = [(v, b) for v in variants for b in inputs]
    times: dict[tuple[str, int], list[float]] = {(v.name, b): [] for v, b in jobs}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(jobs)
            for variant, batch in jobs:
                calls = [timed(variant.run, inputs[batch])[0] for _ in range(burst)]
                times[(variant.name, batch)] += calls[settle:]
    finally:
        gc.enable()
    return times


def summarize(variants: list[Variant], times: dict, diffs: dict, batches: list[int], tolerance) -> list[dict]:
    """One row per (batch, variant): latency stats, throughput, speedup vs eager, accuracy."""
    rows = []
    for batch in batches:
        eager_median = float(np.median(times[("eager", batch)]))
        for v in variants:
            samples = np.asarray(times[(v.name, batch)]) * 1e3
            median = float(np.median(samples))
            rows.append({"batch": batch, "variant": v.name, "kind": v.kind, "artifact": v.artifact,
                         "n": len(samples), "median_ms": median, "p95_ms": float(np.percentile(samples, 95)),
                         "items_per_s": batch / (median / 1e3), "speedup": eager_median * 1e3 / median,
                         "max_abs_diff": diffs[(v.name, batch)],
                         "within_tolerance": diffs[(v.name, batch)] <= tolerance,
                         "load_s": v.load_s, "first_call_s": v.first_call_s[batch]})
    return rows


def verdict(rows: list[dict]) -> dict:
    """Best artifact at batch 1 (by speedup) against the issue's target."""
    candidates = [r for r in rows if r["batch"] == 1 and r["artifact"] and r["within_tolerance"]]
    if not candidates:
        return {"best": None, "speedup": None, "met": False}
    best = max(candidates, key=lambda r: r["speedup"])
    return {"best": best["variant"], "kind": best["kind"], "speedup": best["speedup"],
            "met": best["speedup"] >= TARGET_SPEEDUP}


# -- one manifest --------------------------------------------------------------------------------


def bench_manifest(path: Path, work: Path, args) -> dict:
    """Build, load every variant, warm up, time, summarize."""
    from buildsys import load_manifest, plugins

    print(f"== {path} — building cold into {work}", flush=True)
    built = build(copy_project(path, work / "project"), work)
    manifest = load_manifest(path)
    specs = plugins.Specs.collect(plugins.load())
    artifacts, skipped = artifact_variants(specs, built["targets"], host_tags())
    variants = source_variants(specs, manifest) + artifacts
    inputs = {b: make_inputs(manifest.model, b) for b in args.batches}
    reference, diffs = warm_up(variants, inputs, args.warmup)
    times, timing = time_variants(variants, inputs, args)
    rows = summarize(variants, times, diffs, args.batches, tolerance_of(manifest))
    return {"manifest": str(path), "build": dict(built, stages=stage_times(built)), "skipped": skipped,
            "inputs": describe_inputs(manifest, inputs), "outputs": [list(o.shape) for o in reference[1]],
            **timing, "rows": rows, "verdict": verdict(rows)}


def time_variants(variants: list[Variant], inputs: dict[int, list], args) -> tuple[dict, dict]:
    """The interleaved timed phase, once the machine is quiet; how busy it was meanwhile."""
    rounds = args.rounds or auto_rounds(variants, args.burst, args.seconds)
    print(f"   {len(variants)} variants, {rounds} rounds of one burst of {args.burst} calls "
          f"({args.settle} uncounted) per variant and batch", flush=True)
    before_start = wait_for_quiet(args.wait_quiet)
    before = cpu_counters()
    times = interleave(variants, inputs, rounds, args.burst, args.settle)
    others = others_share(before, cpu_counters())
    print(f"   other processes used {others:.0%} of the CPUs while timing"
          + ("  (NOISY: rerun on a quiet machine)" if others > 0.05 else ""), flush=True)
    return times, {"rounds": rounds, "others_cpu_share": others, "others_cpu_share_before": before_start}


def tolerance_of(manifest) -> float:
    """An absolute bound for 'fast but wrong': the fp32 atol + rtol (outputs here are O(1))."""
    tol = manifest.tolerance("fp32")
    return (tol.atol or 0.0) + (tol.rtol or 0.0)


def describe_inputs(manifest, inputs: dict[int, list]) -> dict:
    return {str(b): [{"name": s.name, "dtype": str(a.dtype), "shape": list(a.shape)}
                     for s, a in zip(manifest.model.inputs, arrays)] for b, arrays in inputs.items()}


def host_tags() -> set[str]:
    """This host's hardware tags, as ``buildsys host`` reports them."""
    proc = subprocess.run([sys.executable, "-m", "buildsys", "host", "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"cpu"}
    return set(json.loads(proc.stdout).get("tags", [])) | {"cpu"}


# -- host and output -----------------------------------------------------------------------------


def host_info() -> dict:
    """CPU model, cores, library versions and the thread settings this run used."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "hardware_tags": sorted(host_tags()),
            "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": version_of("onnxruntime") or version_of("onnxruntime-gpu"),
            "onnx": version_of("onnx"), "numpy": np.__version__, "buildsys": version_of("buildsys"),
            "threads": {"torch.set_num_threads": torch.get_num_threads(),
                        "torch interop threads": torch.get_num_interop_threads(),
                        "onnxruntime": "runner defaults (SessionOptions(); intra_op_num_threads=0 -> ORT's choice)",
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}}


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def stage_table(result: dict) -> list[str]:
    build = result["build"]
    lines = [f"| stage | node | seconds | targets |", "|---|---|---:|---|"]
    lines += [f"| {r['stage']} | {r['node']} | {r['seconds']:.2f} | {', '.join(r['targets'])} |"
              for r in build["stages"]]
    lines.append(f"| **cold build wall** (-j 2) | nodes {', '.join(build['statuses'])} | {build['wall_s']:.2f} | |")
    return lines


def variant_table(result: dict, batch: int) -> list[str]:
    lines = ["| variant | kind | median ms | p95 ms | items/s | vs eager | max abs diff vs eager | load s | first call s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in (r for r in result["rows"] if r["batch"] == batch):
        flag = "" if r["within_tolerance"] else " **WRONG**"
        lines.append(f"| {r['variant']} | {r['kind']} | {r['median_ms']:.3f} | {r['p95_ms']:.3f} | "
                     f"{r['items_per_s']:.0f} | {r['speedup']:.2f}x | {r['max_abs_diff']:.2e}{flag} | "
                     f"{r['load_s']:.2f} | {r['first_call_s']:.2f} |")
    return lines


def missing(result: dict) -> list[str]:
    """Targets that did not build, or built but have no runner on this host, with the reason."""
    failed = [f"build failed: {node}: {error.splitlines()[0][:300]}" for node, error in result["build"]["failed"].items()]
    return failed + result["skipped"]


def verdict_line(result: dict) -> str:
    v = result["verdict"]
    name = Path(result["manifest"]).stem
    if v["best"] is None:
        return f"{name}: no correct artifact ran at batch 1 — target {TARGET_SPEEDUP:.0f}x MISSED"
    met = "met" if v["met"] else "MISSED"
    return (f"{name}: best artifact at batch 1 is {v['best']} ({v['kind']}) at {v['speedup']:.2f}x eager "
            f"— target >= {TARGET_SPEEDUP:.0f}x {met}")


def report(results: list[dict], host: dict, how: dict) -> str:
    """The whole run as markdown: host, then per manifest build stages and one table per batch."""
    lines = ["# CPU variants: eager vs torch.compile vs buildsys artifacts", "",
             "Written by `bench/cpu_variants.py` (one run). Speedup = eager median / variant median, same batch.", "",
             f"Host: {host['cpu']}, {host['cpu_count']} CPUs ({', '.join(host['hardware_tags'])}); "
             f"torch {host['torch']}, onnxruntime "
             f"{host['onnxruntime']}, onnx {host['onnx']}. Threads: {json.dumps(host['threads'])}.", "",
             f"Method: {json.dumps(how)}.", ""]
    for result in results:
        lines += [f"## {result['manifest']}", "", f"Inputs: {json.dumps(result['inputs'])}. "
                  f"{result['rounds']} interleaved rounds after warm-up; other processes used "
                  f"{result['others_cpu_share']:.0%} of the CPUs meanwhile.", ""]
        lines += ["Build time per stage (artifact.json chain):", ""] + stage_table(result) + [""]
        for batch in how["batches"]:
            lines += [f"Batch {batch}:", ""] + variant_table(result, batch) + [""]
        lines += [f"- not benchmarked: {s}" for s in missing(result)] + ([""] if missing(result) else [])
    lines += ["## Verdict", ""] + [f"- {verdict_line(r)}" for r in results]
    return "\n".join(lines) + "\n"


def method(args) -> dict:
    return {"batches": args.batches, "seed": SEED, "burst": args.burst, "settle": args.settle,
            "warmup_calls": args.warmup, "wait_quiet_s": args.wait_quiet,
            "rounds": args.rounds or f"auto (~{args.seconds:.0f} s timed)",
            "build": "python -m buildsys build MANIFEST -j 2 -k --json, cold, in a temp copy of the manifest folder",
            "inputs": "manifest dtypes, every dim at its opt except batch; seed 0; the same arrays for every variant"}


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", nargs="+", type=Path, default=[Path(m) for m in DEFAULT_MANIFESTS],
                        help="example manifests (default: %(default)s)")
    parser.add_argument("--batches", default="1,8", type=lambda s: [int(b) for b in s.split(",")],
                        help="comma-separated batch sizes (default 1,8; the verdict is at batch 1)")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default: auto, see --seconds)")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed phase per manifest when --rounds is auto")
    parser.add_argument("--burst", type=int, default=30, help="back-to-back calls per variant, batch and round")
    parser.add_argument("--settle", type=int, default=15, help="first calls of each burst not counted")
    parser.add_argument("--warmup", type=int, default=20,
                        help="warm-up calls per variant and batch after the first (not in the results)")
    parser.add_argument("--wait-quiet", type=float, default=120.0,
                        help="seconds to wait for other processes to go idle before timing (default 120)")
    parser.add_argument("--workdir", type=Path, help="build here and keep it (default: a temp dir, removed)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/cpu_variants.*")
    args = parser.parse_args(argv)
    if not 0 <= args.settle < args.burst or 1 not in args.batches:
        parser.error("need 0 <= --settle < --burst, and batch 1 in --batches (the target is at batch 1)")
    return args


def run_all(args, root: Path) -> list[dict]:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor-bench")  # torch.compile starts cold
    torch.set_num_threads(os.cpu_count())
    results = []
    for manifest in args.manifests:
        results.append(bench_manifest(manifest.resolve(), root / manifest.stem, args))
        print("\n".join(["", *stage_table(results[-1]), *missing(results[-1])] + [line for b in args.batches
                        for line in ["", f"batch {b}:", *variant_table(results[-1], b)]]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="buildsys-cpu-bench-") as tmp:
        root = args.workdir.resolve() if args.workdir else Path(tmp)
        results = run_all(args, root)
    host = host_info()
    document = {"host": host, "method": method(args), "target_speedup": TARGET_SPEEDUP, "results": results}
    print("\n" + "\n".join(verdict_line(r) for r in results))
    outputs = ([] if args.no_save else [RESULTS / "cpu_variants.json"]) + ([args.json] if args.json else [])
    for path in outputs:
        path.write_text(json.dumps(document, indent=1, default=str))
    if not args.no_save:
        (RESULTS / "cpu_variants.md").write_text(report(results, host, method(args)))
    return 0 if all(r["verdict"]["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
