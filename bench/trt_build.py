"""Benchmark: TensorRT engine builds with TensorRT-RTX on this GPU-less machine.

Not a test. For the example CNN and encoder it builds, through the real ``buildsys`` CLI, the
fp32 / fp16 / int8 ONNX graphs (the precision stages) and an engine of each for [sm86, sm89],
then reports: build time per engine (the builder call and the whole node), plan size, the
layer precisions TensorRT-RTX chose, the no-op rebuild, an engine-only rebuild with the kept
timing cache, and, calling the builder module directly on the fp32 graph, build time and plan
size by number of optimization profiles (buckets). Engines cannot be run here, nor on the
project's H100 machine: the output says why, from the runner's own compatibility check.

    .venv/bin/python bench/trt_build.py                       # prints the markdown
    .venv/bin/python bench/trt_build.py --out bench/results/trt_build.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "fp16", "int8")
# Bucket sets per model, 1..3 profiles, inside the manifests' dims.
BUCKETS = {"cnn": ("batch", [{"min": 1, "opt": 8, "max": 32}, ["1-8", "9-32"], ["1-4", "5-16", "17-32"]]),
           "encoder": ("seq", [{"min": 1, "opt": 64, "max": 128}, ["1-32", "33-128"], ["1-16", "17-64", "65-128"]])}


# -- the project ------------------------------------------------------------------------------


def make_project(model: str, root: Path) -> Path:
    """The example's model block with onnx and engine targets at each precision."""
    source = yaml.safe_load((REPO / "manifests" / f"{model}.yaml").read_text())
    shutil.copytree(REPO / "manifests" / "models", root / "models")
    targets = {}
    for precision in PRECISIONS:
        targets[f"onnx-{precision}"] = {"format": "onnx", "precision": precision}
        targets[f"trt-{precision}"] = {"format": "tensorrt", "precision": precision, "hardware": ["sm86", "sm89"]}
    manifest = {k: source[k] for k in ("schema", "name", "version", "model") if k in source}
    manifest["calibration"] = source.get("calibration") or _calibration_folder(source["model"], root)
    manifest["targets"] = targets
    path = root / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _calibration_folder(model: dict, root: Path) -> dict:
    """Random in-range inputs as .npz batches, for a manifest without a calibration block."""
    folder, rng = root / "calibration", np.random.default_rng(7)
    folder.mkdir()
    for index in range(4):
        arrays = {}
        for spec in model["inputs"]:
            shape = [8 if d == "batch" else 64 if d == "seq" else d for d in spec["shape"]]
            low, high = spec.get("range", [0, 1])
            arrays[spec["name"]] = rng.integers(int(low), int(high), size=shape).astype(spec["dtype"])
        np.savez(folder / f"batch{index}.npz", **arrays)
    return {"data": "calibration", "method": "max", "samples": 32}


def cli(project: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, BUILDSYS_OUT=str(project / "artifacts"), BUILDSYS_CACHE_DIR=str(project / "artifacts" / ".cache"))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "buildsys", *args], cwd=project, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, proc


def record(project: Path, target: str) -> dict | None:
    path = next((project / "artifacts").glob(f"*/*/{target}/artifact.json"), None)
    return json.loads(path.read_text()) if path else None


# -- measurements -------------------------------------------------------------------------------


def build_model(model: str, work: Path) -> dict:
    """Cold build, no-op rebuild, and engine-only rebuilds (timing cache warm) of one example."""
    project = work / model
    manifest = make_project(model, project)
    cold, proc = cli(project, "build", manifest.name, "-j", "2", "--keep-going", "--json")
    summary = (json.loads(proc.stdout)["result"] or {}) if proc.stdout.strip().startswith("{") else {}
    failures = [line for line in proc.stderr.splitlines() if "failed" in line or "refused" in line]
    noop, _ = cli(project, "build", manifest.name, "--json")
    engines = {p: record(project, f"trt-{p}") for p in PRECISIONS}
    rebuild = _engine_only_rebuild(project, manifest, engines)
    return {"model": model, "project": project, "cold": cold, "noop": noop, "summary": summary,
            "failures": failures, "engines": engines, "rebuild": rebuild}


def _engine_only_rebuild(project: Path, manifest: Path, engines: dict) -> float | None:
    """Forget the engines' cache entries and build again: only the engines run, timing cache warm."""
    keys = [rec["chain"][-1]["action_key"] for rec in engines.values() if rec]
    if not keys:
        return None
    for key in keys:
        (project / "artifacts" / ".cache" / "ac" / key[:2] / f"{key}.json").unlink(missing_ok=True)
    seconds, _ = cli(project, "build", manifest.name, "-j", "1", "--keep-going", "--json")
    return seconds


def profile_counts(result: dict, repeats: int) -> list[dict]:
    """Build time and plan size of the fp32 graph with 1, 2 and 3 profiles (builder called directly)."""
    import tensorrt_rtx as trt

    from buildsys.manifest import ModelSpec
    from buildsys_tensorrt import builder
    from buildsys_tensorrt.options import PlanOptions

    onnx_dir = next((result["project"] / "artifacts").glob("*/*/onnx-fp32"))
    onnx_path = next(onnx_dir.glob("*.onnx"))
    source = yaml.safe_load((REPO / "manifests" / f"{result['model']}.yaml").read_text())["model"]
    dim, variants = BUCKETS[result["model"]]
    rows = []
    for variant in variants:
        block = dict(source, dims=dict(source["dims"], **{dim: variant if isinstance(variant, dict) else {"buckets": variant}}))
        model = ModelSpec.model_validate(block)
        times, engine = [], None
        for _ in range(repeats):
            started = time.perf_counter()
            engine = builder.build_engine(builder.Request(onnx=onnx_path, trt=trt, flavour="tensorrt-rtx", sms=(86, 89),
                                                          options=PlanOptions(), model=model))
            times.append((time.perf_counter() - started, engine.seconds))
        rows.append({"model": result["model"], "profiles": len(engine.profiles), "dim": f"{dim}: {variant}",
                     "total_s": statistics.median(t[0] for t in times), "build_s": statistics.median(t[1] for t in times),
                     "plan_bytes": len(engine.plan)})
    return rows


def timing_cache_effect(result: dict) -> dict:
    """After a warm-up build, two builds of the fp32 graph sharing one kept timing cache (empty,
    then as the first left it): does the second get faster?"""
    import tensorrt_rtx as trt

    from buildsys.manifest import ModelSpec
    from buildsys_tensorrt import builder, timing
    from buildsys_tensorrt.options import PlanOptions

    onnx_path = next(next((result["project"] / "artifacts").glob("*/*/onnx-fp32")).glob("*.onnx"))
    model = ModelSpec.model_validate(yaml.safe_load((REPO / "manifests" / f"{result['model']}.yaml").read_text())["model"])
    cache = result["project"] / "bench-timing.cache"

    @contextlib.contextmanager
    def open_path():
        yield cache

    builder.build_engine(builder.Request(onnx=onnx_path, trt=trt, flavour="tensorrt-rtx", sms=(86, 89),
                                         options=PlanOptions(), model=model))  # warm-up: first-build costs aside
    runs = []
    for _ in range(2):
        engine = builder.build_engine(builder.Request(onnx=onnx_path, trt=trt, flavour="tensorrt-rtx", sms=(86, 89),
                                                      options=PlanOptions(), model=model, timing=timing.Session(open_path)))
        runs.append((engine.seconds, engine.timing))
    return {"model": result["model"], "cold_s": runs[0][0], "warm_s": runs[1][0], "entries": runs[1][1]["entries"],
            "bytes": runs[1][1]["saved_bytes"]}


def runner_reasons() -> list[tuple[str, str]]:
    """Why the engines cannot run on this host, and on the project's H100 machine."""
    from buildsys_tensorrt.runner import Gpu, HostRuntime, incompatibility, probe

    import tensorrt_rtx as trt

    meta = {"flavour": "tensorrt-rtx", "flavour_version": trt.__version__, "compute_capabilities": [86, 89]}
    h100 = HostRuntime({"tensorrt-rtx": trt.__version__}, [Gpu(0, "NVIDIA H100 80GB HBM3", 90)])
    return [("this machine", incompatibility(meta, probe()) or "can run"),
            ("the lent H100 machine (even with TensorRT-RTX installed there)", incompatibility(meta, h100) or "can run")]


# -- report ---------------------------------------------------------------------------------------


def report(results: list[dict], profiles: list[dict], caches: list[dict], reasons, repeats: int) -> str:
    import tensorrt_rtx as trt

    lines = [f"# TensorRT engine builds (TensorRT-RTX {trt.__version__}, no GPU)", "",
             f"`bench/trt_build.py`, {time.strftime('%Y-%m-%d')}, {platform.machine()} with {os.cpu_count()} cores (shared with other work), "
             "no GPU, Python " + platform.python_version() + "; engines for `[sm86, sm89]` (one multi-CC plan), "
             "builder optimization level 3, profiles from the manifests' dims.", "",
             "## Engines built through the CLI", "",
             "| model | precision | engine node s | builder s | plan MiB | layers | layer precisions |", "|---|---|---|---|---|---|---|"]
    for result in results:
        for precision, rec in result["engines"].items():
            lines.append(_engine_row(result["model"], precision, rec))
    lines += ["", "| model | cold build `-j 2` (torch.export, ONNX, precision, engines) s | no-op rebuild s | "
              "engines only, timing cache warm s |", "|---|---|---|---|"]
    for result in results:
        rebuild = f"{result['rebuild']:.2f}" if result["rebuild"] is not None else "n/a"
        lines.append(f"| {result['model']} | {result['cold']:.1f} | {result['noop']:.2f} | {rebuild} |")
    failed = [f"- {r['model']}: {line.strip()}" for r in results for line in r["failures"]]
    if failed:
        lines += ["", "Nodes that failed or targets refused:", *failed]
    lines += ["", f"## Build time by number of optimization profiles (fp32 graph, builder called directly, median of {repeats})",
              "", "| model | profiles | dims | total s (parse + build) | build s | plan MiB |", "|---|---|---|---|---|---|"]
    for row in profiles:
        lines.append(f"| {row['model']} | {row['profiles']} | `{row['dim']}` | {row['total_s']:.2f} | "
                     f"{row['build_s']:.2f} | {row['plan_bytes'] / 2**20:.2f} |")
    lines += ["", "## Timing cache (kept per flavour, version and hardware)", "",
              "| model | build, empty cache s | build, cache reused s | entries after | file bytes |", "|---|---|---|---|---|"]
    for row in caches:
        lines.append(f"| {row['model']} | {row['cold_s']:.2f} | {row['warm_s']:.2f} | {row['entries']} | {row['bytes']} |")
    lines += ["", "## Running the engines", ""]
    lines += [f"- Not run on {where}: {why}." for where, why in reasons]
    return "\n".join(lines + ["", *NOTES]) + "\n"


NOTES = [
    "## How to read this", "",
    "- *builder s* is `build_serialized_network` alone; *engine node s* adds the worker process (loading "
    "plugins, importing onnx and tensorrt_rtx), reading the graph and writing the plan.",
    "- A layer's precision is the narrowest element type among its inputs and weights, from the build log's "
    "layer report (`meta.layers` in artifact.json); `none` counts layers without tensors (shape calls, stream "
    "signal/wait), `int64` index arithmetic on token ids. TensorRT-RTX finishes kernel selection on the GPU at run "
    "time (many tactics read `__myelin_CASK_STUB` here), so the report shows precisions more than final kernels.",
    "- TensorRT-RTX 1.7 documents timing-cache calls as no-ops: the kept cache holds 0 entries and does not "
    "shorten builds. The rebuild that is fast is buildsys' own action cache (*no-op rebuild*).",
    "- More profiles cost build time and plan size roughly in proportion: each profile gets its own kernels.",
]


def _engine_row(model: str, precision: str, rec: dict | None) -> str:
    if rec is None:
        return f"| {model} | {precision} | not built (see below) | | | | |"
    meta, node = rec["meta"], rec["chain"][-1]
    counts = ", ".join(f"{k} {v}" for k, v in meta["layers"]["precision_counts"].items())
    return (f"| {model} | {precision} | {node['seconds']:.2f} | {meta['build']['seconds']:.2f} | "
            f"{meta['build']['plan_bytes'] / 2**20:.2f} | {meta['layers']['count']} | {counts} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the markdown here as well")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="trt-bench-"))
    try:
        results = [build_model(model, work) for model in ("cnn", "encoder")]
        profiles = [row for result in results for row in profile_counts(result, args.repeats)]
        caches = [timing_cache_effect(result) for result in results]
        text = report(results, profiles, caches, runner_reasons(), args.repeats)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
