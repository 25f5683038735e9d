"""Benchmark: how much ``buildsys build`` adds on top of the tools it drives (issue 18).

Not a test. Side by side in one run, each case cold (empty cache, fresh artifact root):

- ``pool``: ``buildsys build`` with the warm worker pool (the default);
- ``no-pool``: ``buildsys build --no-pool`` (a fresh worker process per stage, as before);
- ``script``: one plain Python script doing the same exports and validations in one process
  (case a: ``SCRIPT`` below; case b: ``bench/main_job_script.py``, which also prints its
  per-step times).

Every run gets a fresh TorchInductor cache (``TORCHINDUCTOR_CACHE_DIR`` under its output
folder), shared by the two manifests of case b as it would be on a fresh machine: a warm
``/tmp/torchinductor_<user>`` left by an earlier build would shorten the AOTInductor compiles.

Cases: ``a``, a tiny MLP (8 -> 16 -> 4) to torch.exported + onnx + onnx.ort, each validated
against eager on three samples; ``b``, the README's main job (manifests/cnn.yaml then
manifests/encoder.yaml, ``-j 2``). Prints a table with the ratios and writes it to
bench/results/build_speed.md (``--out``).

    python bench/build_speed.py                  # case a, 3 runs each
    python bench/build_speed.py --case a b --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from buildsys.testing.models import TINY_TORCH_FILES, tiny_torch_manifest  # noqa: E402

TARGETS = {"exported": "{format: torch.exported}", "onnx": "{format: onnx}", "ort": "{format: onnx.ort}"}

# The plain script: what a user would write to get the same three artifacts, each checked
# against eager on the same kind of samples (min, opt and max batch), in one process.
SCRIPT = r'''
import sys, time
started = time.perf_counter()
import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, ".")
from models.tiny import build

def check(name, got, want):
    got = np.asarray(got)
    want = want.detach().numpy()
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise SystemExit(f"{name}: outputs differ by {np.abs(got - want).max()}")

model = build()
generator = torch.Generator().manual_seed(1)
samples = [torch.randn(b, 8, generator=generator) for b in (1, 2, 4)]
with torch.no_grad():
    expected = [model(x) for x in samples]
batch = torch.export.Dim("batch", min=1, max=4)
program = torch.export.export(model, (torch.randn(2, 8),), dynamic_shapes=({0: batch},))
torch.export.save(program, "model.pt2")
loaded = torch.export.load("model.pt2").module()
with torch.no_grad():
    for x, want in zip(samples, expected):
        check("exported", loaded(x), want)

onnx_program = torch.onnx.export(program, dynamo=True, dynamic_shapes=({0: batch},), input_names=["x"],
                                 output_names=["output"])
onnx_program.save("model.onnx")
graph = onnx.load("model.onnx")
onnx.checker.check_model(graph)
opset = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
for x, want in zip(samples, expected):
    check("onnx", session.run(None, {"x": x.numpy()})[0], want)

options = ort.SessionOptions()
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
options.optimized_model_filepath = "model.ort.onnx"
ort.InferenceSession("model.onnx", options, providers=["CPUExecutionProvider"])
session = ort.InferenceSession("model.ort.onnx", providers=["CPUExecutionProvider"])
for x, want in zip(samples, expected):
    check("onnx.ort", session.run(None, {"x": x.numpy()})[0], want)
print(f"opset {opset}; in-script time {time.perf_counter() - started:.2f} s")
'''


#: What each timed command printed (case b: the builds' per-node lines, the script's per-step times).
OUTPUTS: list[dict] = []


def timed(argv: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    OUTPUTS.append({"argv": argv[1:], "seconds": round(seconds, 2), "load": os.getloadavg()[0],
                    "stdout": proc.stdout[-20000:], "stderr": proc.stderr[-20000:]})
    return seconds


#: Digests of the deterministic nodes each build mode produced, per case (pool vs --no-pool).
DIGESTS: dict[str, dict[str, dict]] = {}


def build_run(manifests: list[Path], cwd: Path, out: Path, extra: list[str], case: str, mode: str) -> float:
    """Cold ``buildsys build`` of each manifest in turn (a fresh artifact root and cache); keeps
    the digests its locks record for deterministic nodes, to compare the modes."""
    shutil.rmtree(out, ignore_errors=True)
    env = {"BUILDSYS_OUT": str(out), "BUILDSYS_CACHE_DIR": str(out / ".cache"),
           "TORCHINDUCTOR_CACHE_DIR": str(out / ".inductor")}
    quiet = ["-q"] if case == "a" else []  # case b keeps the per-node lines (stage times) for --json
    seconds = sum(timed([sys.executable, "-m", "buildsys", "build", str(m), *quiet, *extra], cwd, env)
                  for m in manifests)
    digests = DIGESTS.setdefault(case, {}).setdefault(mode, {})
    for manifest in manifests:
        lock = tomllib.loads(manifest.with_suffix(".lock").read_text())
        digests.update({node: entry.get("digest") for node, entry in lock["nodes"].items()
                        if entry.get("deterministic")})
    return seconds


def case_a(tmp: Path, runs: int) -> dict[str, list[float]]:
    project = tmp / "a"
    for name, text in TINY_TORCH_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    manifest = project / "manifest.yaml"
    manifest.write_text(tiny_torch_manifest(TARGETS, name="mlp"))
    (project / "script.py").write_text(SCRIPT)
    times: dict[str, list[float]] = {"pool": [], "no-pool": [], "script": []}
    for _ in range(runs):  # interleaved, so a busy moment weighs on every mode alike
        times["pool"].append(build_run([manifest], project, tmp / "out-a", [], "a", "pool"))
        times["no-pool"].append(build_run([manifest], project, tmp / "out-a", ["--no-pool"], "a", "no-pool"))
        times["script"].append(timed([sys.executable, "script.py"], project, {}))
    return times


def case_b(tmp: Path, runs: int) -> dict[str, list[float]]:
    project = tmp / "b"
    shutil.copytree(REPO / "manifests", project)
    manifests = [project / "cnn.yaml", project / "encoder.yaml"]
    times: dict[str, list[float]] = {"pool": [], "no-pool": [], "script": []}
    script = [sys.executable, str(REPO / "bench" / "main_job_script.py"), str(project), str(tmp / "out-b" / "script")]
    for _ in range(runs):
        times["pool"].append(build_run(manifests, project, tmp / "out-b", ["-j", "2"], "b", "pool"))
        times["no-pool"].append(build_run(manifests, project, tmp / "out-b", ["-j", "2", "--no-pool"], "b", "no-pool"))
        shutil.rmtree(tmp / "out-b", ignore_errors=True)
        times["script"].append(timed(script, project, {"TORCHINDUCTOR_CACHE_DIR": str(tmp / "out-b" / ".inductor")}))
    return times


def same(case: str) -> str:
    """Whether the pool and --no-pool builds recorded the same digest for every deterministic node."""
    modes = DIGESTS.get(case, {})
    pool, no_pool = modes.get("pool", {}), modes.get("no-pool", {})
    differ = sorted(n for n in pool.keys() | no_pool.keys() if pool.get(n) != no_pool.get(n))
    return f"yes ({len(pool)} nodes)" if pool and not differ else f"NO: {', '.join(differ)}"


CASES = {"a": ("tiny MLP -> torch.exported + onnx + onnx.ort, validated", case_a),
         "b": ("README main job: cnn.yaml + encoder.yaml, -j 2", case_b)}


def table(results: dict[str, dict[str, list[float]]], runs: int, load: float) -> str:
    lines = ["| case | pool (s) | no-pool (s) | plain script (s) | no-pool / pool | pool / script | no-pool / script "
             "| same checksums |", "|---|---|---|---|---|---|---|---|"]
    for case, times in results.items():
        med = {mode: statistics.median(values) for mode, values in times.items()}
        script = med.get("script")
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "—"  # noqa: E731
        lines.append(f"| {case}: {CASES[case][0]} | {med['pool']:.1f} | {med['no-pool']:.1f} | "
                     f"{f'{script:.1f}' if script else '—'} | {ratio(med['no-pool'], med['pool'])} | "
                     f"{ratio(med['pool'], script)} | {ratio(med['no-pool'], script)} | {same(case)} |")
    lines.append(f"\nMedian of {runs} cold run(s) each, interleaved; {os.cpu_count()} CPUs, "
                 f"Python {platform.python_version()}, 1-min load average at the start: {load:.2f} "
                 "(the machine is shared; compare ratios within one run, not across runs).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", nargs="+", choices=sorted(CASES), default=["a"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "build_speed.md")
    parser.add_argument("--json", type=Path, help="also write the raw times here")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="build_speed-") as tmp:
        for case in args.case:
            results[case] = CASES[case][1](Path(tmp), args.runs)
            print(f"case {case}: {json.dumps(results[case])}", file=sys.stderr)
    text = table(results, args.runs, load)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Build speed: buildsys build (warm pool / --no-pool) against one plain script\n\n"
                        "`python bench/build_speed.py " + " ".join(sys.argv[1:]) + "`\n\n" + text + "\n")
    if args.json:
        args.json.write_text(json.dumps({"times": results, "outputs": OUTPUTS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
