"""Benchmark: jax.jit vs the deserialized jax.export vs the deserialized XLA executable.

Not a test. It

1. copies manifests/jax-mlp.yaml and its models into a work folder (on a machine where jax sees
   a CUDA device it adds ``xla-cuda: {format: xla.executable, hardware: cuda, from: stablehlo}``,
   the cuda lowering compiled and validated on the GPU) and builds it cold with the real CLI
   (``python -m buildsys build MANIFEST -j 2 -k --json``);
2. loads, on the timed device (cuda if there is one, else cpu): ``jax.jit`` of the model's
   ``apply(params, x)`` (params on the device, as arguments), the built ``stablehlo`` artifact
   deserialized and called through ``jax.jit(exported.call)``, and the built executable
   deserialized with ``jax.experimental.serialize_executable``, all from the files the build wrote;
3. checks every variant against ``jax.jit`` on the same inputs (and against the CPU reference);
4. times batch 1 and 32 (inputs already on the device, ``block_until_ready`` on the outputs):
   warm-up, then interleaved rounds, each a burst per (variant, batch) in a seeded shuffled
   order whose first calls are not counted, so drift hits every variant alike. Medians, one run.

    python bench/jax_variants.py                         # writes bench/results/jax_variants_<device>.md
    python bench/jax_variants.py --rounds 60 --out /tmp/r.md

Set XLA_PYTHON_CLIENT_PREALLOCATE=false (done here) so build workers and this process share a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # before jax is imported

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifests" / "jax-mlp.yaml"
RESULTS = REPO / "bench" / "results"
# On a GPU: the cuda lowering compiled there; fp32 tolerances as in manifests/cnn-h100.yaml (a GPU
# reorders sums even at HIGHEST precision). The report gives the actual errors.
CUDA_TARGET = ("  xla-cuda:  {format: xla.executable, hardware: cuda, from: stablehlo}\n"
               "validation:\n  fp32: {rtol: 1.0e-3, atol: 1.0e-4}\n")


def cuda_device():
    import jax

    try:
        return jax.devices("cuda")[0]
    except RuntimeError:
        return None


# -- build ---------------------------------------------------------------------------------------


def build(work: Path, with_cuda: bool) -> dict:
    """Cold build of a copy of the example (plus the cuda target on a GPU machine)."""
    project = work / "project"
    shutil.copytree(MANIFEST.parent / "models", project / "models", ignore=shutil.ignore_patterns("__pycache__"))
    text = MANIFEST.read_text() + (CUDA_TARGET if with_cuda else "")
    (project / MANIFEST.name).write_text(text)
    env = dict(os.environ, BUILDSYS_OUT=str(work / "out"), BUILDSYS_CACHE_DIR=str(work / "cache"))
    command = [sys.executable, "-m", "buildsys", "build", MANIFEST.name, "-j", "2", "-k", "--json"]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if not proc.stdout.strip().startswith("{"):
        sys.exit(f"buildsys build exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout)["result"]  # the JSON envelope's result
    records = {t: json.loads((Path(d) / "artifact.json").read_text()) for t, d in summary["targets"].items()
               if (Path(d) / "artifact.json").is_file()}
    failed = {n: o.get("error") for n, o in summary["nodes"].items() if o["status"] == "failed"}
    return {"wall_s": wall, "exit": proc.returncode, "dirs": summary["targets"], "records": records,
            "failed": failed, "stderr": proc.stderr[-3000:] if proc.returncode else ""}


def primary(directory: str, record: dict) -> Path:
    return Path(directory) / next(f["name"] for f in record["files"] if f["role"] == "primary")


# -- variants ------------------------------------------------------------------------------------


def variants(built: dict, device) -> dict:
    """name -> (callable on device arrays returning a flat tuple, load seconds)."""
    import jax

    sys.path.insert(0, str(MANIFEST.parent / "models"))
    import jax_mlp
    from buildsys_jax.compile import load_exported
    from buildsys_jax.runtime import load_executables

    found = {}
    started = time.perf_counter()
    params = jax.device_put(unflatten(dict(np.load(jax_mlp.WEIGHTS))), device)
    jitted = jax.jit(jax_mlp.apply)
    found["jax.jit"] = (lambda x: tuple(jax.tree_util.tree_leaves(jitted(params, x))), time.perf_counter() - started)
    started = time.perf_counter()
    exported = load_exported(primary(built["dirs"]["stablehlo"], built["records"]["stablehlo"]))
    call = jax.jit(exported.call)
    found["export (deserialized)"] = (lambda x: tuple(jax.tree_util.tree_leaves(call(x))), time.perf_counter() - started)
    target = "xla-host" if device.platform == "cpu" else "xla-cuda"  # jax calls a CUDA device's platform "gpu"
    if target in built["records"]:
        started = time.perf_counter()
        _, table = load_executables(primary(built["dirs"][target], built["records"][target]))
        found[f"executable (deserialized, {target})"] = (lambda x: table[(tuple(x.shape),)](x), time.perf_counter() - started)
    return found


def unflatten(flat: dict) -> dict:
    """The weights file's ``layers/0/w`` keys back into the params pytree."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    tree["layers"] = [tree["layers"][str(i)] for i in range(len(tree["layers"]))]
    return tree


# -- measurement ---------------------------------------------------------------------------------


def check(found: dict, inputs: dict, reference: dict) -> dict:
    """Max abs difference of every variant's outputs from jax.jit's, and from the CPU reference."""
    diffs = {}
    for name, (run, _) in found.items():
        for batch, x in inputs.items():
            got = [np.asarray(o) for o in run(x)]
            jit = [np.asarray(o) for o in found["jax.jit"][0](x)]
            diffs[(name, batch)] = (max(float(np.abs(a - b).max()) for a, b in zip(got, jit)),
                                    max(float(np.abs(a - b).max()) for a, b in zip(got, reference[batch])))
    return diffs


def first_calls(found: dict, inputs: dict) -> dict:
    """Seconds of each (variant, batch)'s first call: jit compiles, the executable does not."""
    import jax

    first = {}
    for name, (run, _) in found.items():
        for batch, x in inputs.items():
            started = time.perf_counter()
            jax.block_until_ready(run(x))
            first[(name, batch)] = time.perf_counter() - started
    return first


def time_all(found: dict, inputs: dict, rounds: int, burst: int, settle: int, warmup: int) -> dict:
    """Every counted call's seconds per (variant, batch), after ``warmup`` calls each."""
    import jax

    samples = {(n, b): [] for n in found for b in inputs}
    for (name, batch) in samples:
        for _ in range(warmup):
            jax.block_until_ready(found[name][0](inputs[batch]))
    order = list(samples)
    shuffle = random.Random(0)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name, batch in order:
            run, x = found[name][0], inputs[batch]
            for i in range(burst):
                started = time.perf_counter()
                jax.block_until_ready(run(x))
                if i >= settle:
                    samples[(name, batch)].append(time.perf_counter() - started)
    return samples


# -- report --------------------------------------------------------------------------------------


def report(built: dict, device, found: dict, diffs: dict, timing: dict, args) -> str:
    import jax

    lines = [f"# JAX variants on {device.device_kind}", "",
             "Written by `bench/jax_variants.py` (one run). Speed = jax.jit median / variant median, same batch.", "",
             f"Host: {platform.node()}, {os.cpu_count()} CPUs; jax {jax.__version__}, python {platform.python_version()}. "
             f"Method: inputs on the device, outputs blocked on; {args.warmup} warm-up calls, then {args.rounds} "
             f"interleaved rounds of bursts of {args.burst} calls per (variant, batch), the first {args.settle} "
             "of each burst not counted, seeded shuffled order.", "", "## Build", "",
             f"Cold `buildsys build` (-j 2): {built['wall_s']:.1f} s, exit {built['exit']}; failed: {built['failed'] or 'none'}.", "",
             "| target | kind | hardware | validation | stage seconds |", "|---|---|---|---|---|"]
    for target, rec in built["records"].items():
        validation = rec["validation"]
        status = validation["status"] + (f" on {validation.get('runner')}, max abs "
                                         f"{max(o['max_abs'] for o in validation['outputs']):.1e}" if validation["status"] == "passed"
                                         else f" ({validation.get('reason')})")
        steps = ", ".join(f"{s['stage']} {s['seconds']:.2f}" for s in rec["chain"] if "seconds" in s)
        lines.append(f"| {target} | {rec['kind']} | {rec['hardware']} | {status} | {steps} |")
    for target in ("xla-host", "xla-cuda"):
        if target in built["records"]:
            meta = built["records"][target]["meta"]
            lines.append(f"\n`{target}`: compiled for {meta['platform']} / {meta['device_kind']} "
                         f"(sm {meta['compute_capability'] or 'n/a'}), sizes {meta['sizes']}, {meta['tool_tag']}.")
    lines += ["", "## Latency", "", "| variant | batch | median µs | p95 µs | speed vs jax.jit | first call ms | load ms | "
              "max abs diff vs jit | vs CPU reference |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    medians = {k: float(np.median(v)) for k, v in timing["samples"].items()}
    for name in found:
        for batch in args.batches:
            key = (name, batch)
            values = timing["samples"][key]
            lines.append(f"| {name} | {batch} | {medians[key] * 1e6:.1f} | {np.percentile(values, 95) * 1e6:.1f} | "
                         f"{medians[('jax.jit', batch)] / medians[key]:.2f}x | {timing['first'][key] * 1e3:.1f} | "
                         f"{found[name][1] * 1e3:.1f} | {diffs[key][0]:.1e} | {diffs[key][1]:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--settle", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None, help="build here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="markdown report (default: bench/results/jax_variants_<device>.md)")
    args = parser.parse_args(argv)
    import jax

    gpu = cuda_device()
    device = gpu or jax.devices("cpu")[0]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="jax-bench-"))
    built = build(work, with_cuda=gpu is not None)
    if "stablehlo" not in built["records"]:
        sys.exit(f"the stablehlo target was not built: {built['failed']}\n{built['stderr']}")
    found = variants(built, device)
    rng = np.random.default_rng(0)
    host_inputs = {b: rng.standard_normal((b, 32)).astype(np.float32) for b in args.batches}
    inputs = {b: jax.device_put(x, device) for b, x in host_inputs.items()}
    first = first_calls(found, inputs)
    diffs = check(found, inputs, cpu_reference(host_inputs))
    timing = {"first": first, "samples": time_all(found, inputs, args.rounds, args.burst, args.settle, args.warmup)}
    text = report(built, device, found, diffs, timing, args)
    kind = "h100" if "H100" in device.device_kind else "cpu" if device.platform == "cpu" else "gpu"
    out = args.out or RESULTS / f"jax_variants_{kind}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0 if not built["failed"] else 1


def cpu_reference(host_inputs: dict) -> dict:
    """The model's jitted outputs on the CPU, for the same inputs (what validation compares with)."""
    import jax
    import jax_mlp

    cpu = jax.devices("cpu")[0]
    params = jax.device_put(unflatten(dict(np.load(jax_mlp.WEIGHTS))), cpu)
    jitted = jax.jit(jax_mlp.apply)
    return {b: [np.asarray(o) for o in jax.tree_util.tree_leaves(jitted(params, jax.device_put(x, cpu)))]
            for b, x in host_inputs.items()}


if __name__ == "__main__":
    sys.exit(main())
