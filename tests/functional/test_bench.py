"""``buildsys bench`` and ``buildsys report`` on tiny models, and every bad input.

Tiny timing counts only; no assertion here is about speed (figures live in bench/results/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from buildsys.artifacts import artifact_digest
from buildsys.benchmark.results import picks
from buildsys.testing.models import TINY_TEXT_FILES, tiny_text_manifest

FAST = ("--rounds", "2", "--burst", "2", "--settle", "0", "--warmup", "1")

#: A plugin whose runner takes the process down while loading, as AOTInductor does on the
#: H100 machine: bench must list that artifact as skipped and time the others.
CRASHY_PLUGIN = '''
import os
import signal

from buildsys import KindSpec, RunnerSpec, StageSpec, hookimpl


def copy(ctx, inputs, options):
    (ctx.out_dir / "crashy.txt").write_text(inputs[0].primary.read_text())
    return {"primary": "crashy.txt"}


def crash(artifact, device):
    os.kill(os.getpid(), signal.SIGSEGV)


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("fixture.crashy", 2, "loads only to crash")]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("fixture.crashy", consumes=("text",), produces="fixture.crashy", run=copy)]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="crashy", kind="fixture.crashy", load=crash)]
'''


#: A runner whose calls wait until the test has read, from bench's stderr, that the call is
#: starting: bench can only finish if it shows the child's progress while the child runs.
GATED_PLUGIN = '''
import os
import time
from pathlib import Path

from buildsys import KindSpec, RunnerSpec, StageSpec, hookimpl


def copy(ctx, inputs, options):
    (ctx.out_dir / "gated.txt").write_text(inputs[0].primary.read_text())
    return {"primary": "gated.txt"}


def gated(artifact, device):
    gate = Path(os.environ["BENCH_TEST_GATE"])

    def run(arrays):
        deadline = time.monotonic() + 120
        while not gate.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the gate never opened: bench did not show its progress while it ran")
            time.sleep(0.02)
        return list(arrays)
    return run


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("fixture.gated", 2, "runs once the test has seen bench's progress")]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("fixture.gated", consumes=("text",), produces="fixture.gated", run=copy)]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="gated", kind="fixture.gated", load=gated)]
'''


def bench_json(project, *args, env=None) -> dict:
    result = project.cli("bench", "manifest.yaml", "--json", *FAST, *args, env=env).assert_ok()
    return json.loads(result.stdout)["result"]


def rows(doc: dict) -> dict[tuple[str, int], dict]:
    return {(r["variant"], r["batch"]): r for r in doc["rows"]}


def test_bench_times_references_and_artifacts_side_by_side(buildsys_project, tiny_manifest):
    pytest.importorskip("torch")  # the torch extra is installed in CI: this never hides the feature there
    tiny_manifest({"exported": "{format: exported}", "onnx": "{format: onnx}"})
    buildsys_project.cli("build", "manifest.yaml", "-t", "exported").assert_ok()
    doc = bench_json(buildsys_project, "--batch", "1,2", "--reference", "eager")
    by = rows(doc)
    assert sorted(by) == [("eager", 1), ("eager", 2), ("exported", 1), ("exported", 2)]  # no torch.compile: filtered
    assert by[("eager", 1)]["speedup"] == pytest.approx(1.0) and by[("eager", 1)]["kind"] == "reference"
    exported = by[("exported", 2)]
    assert exported["kind"] == "torch.exported" and exported["artifact"] and exported["device"] == "cpu"
    assert exported["within_tolerance"] and exported["max_abs_diff"] < 1e-5 and exported["n"] == 4
    assert exported["median_ms"] > 0 and exported["peak_memory_bytes"] > 0 and exported["kernels"] is None
    assert doc["inputs"]["2"] == [{"name": "x", "dtype": "float32", "shape": [2, 8]}]
    assert {"target": "onnx", "kind": "onnx", "reason": "not built (buildsys build, or bench --build)"} in doc["skipped"]
    assert any("no GPU on this host: GPU variants skipped" in n for n in doc["notes"])
    beside = buildsys_project.out / "tiny" / "1.0.0" / f"bench-{doc['host']['id']}.json"
    assert json.loads(beside.read_text())["rows"] == doc["rows"]
    cached = list((buildsys_project.cache / "bench" / "tiny" / "1.0.0").glob(f"{doc['host']['id']}-*.json"))
    assert len(cached) == 1 and doc["host"]["id"] in beside.name

    # each variant alone in a fresh process: its own memory (over that process's baseline) and cold start
    assert doc["memory_mode"] == "separate" and sorted(doc["footprints"]) == ["eager", "exported"]
    alone = doc["footprints"]["exported"]
    assert alone["load_s"] > 0 and sorted(alone["first_call_s"]) == ["1", "2"]
    assert 0 < alone["peak_bytes"]["2"] < exported["peak_memory_bytes"]  # the shared reading holds eager too
    assert doc["host"]["cpu_model"] and doc["tools"]["torch"]

    buildsys_project.cli("report", "manifest.yaml", "-o", "rep").assert_ok()
    page = (buildsys_project.root / "rep" / "report.html").read_text()
    assert "not built" in page and "torch.exported" in page and "https://" not in page
    for choice in picks(doc):  # whatever the machine's noise was, the page says what the readers decided
        assert (f"<b>{choice.row['variant']}</b>" if choice.row else choice.why.replace("'", "&#x27;")) in page
    record = json.loads((buildsys_project.out / "tiny" / "1.0.0" / "exported" / "artifact.json").read_text())
    assert artifact_digest(record) in page and f"torch {record['runtime']['torch']}" in page
    assert (buildsys_project.root / "rep" / "report.png").stat().st_size > 1000


def test_bench_shows_the_progress_of_each_variant_while_it_runs(buildsys_project):
    buildsys_project.write("gated_plugin.py", GATED_PLUGIN)
    targets = {"normalized": "{format: text}", "slow": "{format: fixture.gated}"}
    buildsys_project.manifest(tiny_text_manifest(targets), files=TINY_TEXT_FILES)
    gate = buildsys_project.root / "gate"
    env = {**os.environ, **buildsys_project.env, "BENCH_TEST_GATE": str(gate),
           "PYTHONPATH": os.pathsep.join([str(buildsys_project.root), os.environ.get("PYTHONPATH", "")])}
    buildsys_project.cli("-p", "gated_plugin", "build", "manifest.yaml", env=env).assert_ok()  # text: not validated
    proc = subprocess.Popen([sys.executable, "-m", "buildsys", "-p", "gated_plugin", "bench", "manifest.yaml", *FAST,
                             "--batch", "1,2", "--memory", "shared"], cwd=buildsys_project.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    lines = []
    for line in proc.stdout:  # stderr (progress) and stdout (the table) in the order they were written
        lines.append(line.rstrip("\n"))
        if "slow at batch 1: first call ..." in line:
            gate.touch()  # the child is waiting in that very call: it was shown before the call ended
    assert proc.wait(timeout=300) == 0, "\n".join(lines)
    assert gate.exists(), "\n".join(lines)
    progress = lines[:next(i for i, line in enumerate(lines) if line.startswith("# bench tiny"))]
    for expected in ("loading target 1/2: normalized ...", "loading target 2/2: slow ...", "warm-up 1/4: normalized at batch 1",
                     "warm-up 4/4: slow at batch 2: first call", "timing: round 2/2 (100%)"):
        assert any(line.startswith(expected) for line in progress), f"{expected!r} not before the table:\n" + "\n".join(lines)


def test_bench_of_a_target_not_built_says_build_it_first(buildsys_project):
    buildsys_project.manifest(tiny_text_manifest({"normalized": "{format: text}"}), files=TINY_TEXT_FILES)
    buildsys_project.cli("bench", "manifest.yaml", "-t", "normalized").assert_error(
        2, "target(s) normalized of manifest.yaml not built", "build it first: buildsys build", "--build")
    doc = bench_json(buildsys_project, "--build")
    assert [r["variant"] for r in doc["rows"]] == ["normalized", "normalized"]  # batches 1 and 8
    assert doc["baseline"] == "normalized"  # a text model has no eager reference


def test_artifacts_without_a_runner_here_are_listed_with_the_reason(buildsys_project):
    targets = {"normalized": "{format: text}", "stats": "{format: text.stats}",
               "rtx-pack": "{format: text.pack, hardware: [sm86, sm89]}"}
    buildsys_project.manifest(tiny_text_manifest(targets), files=TINY_TEXT_FILES)
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    doc = bench_json(buildsys_project, "--batch", "1")
    skipped = {s["target"]: s["reason"] for s in doc["skipped"]}
    assert sorted(skipped) == ["rtx-pack", "stats"]
    assert skipped["stats"].startswith("no runner for kind text.stats")
    assert [r["variant"] for r in doc["rows"]] == ["normalized"]
    text = buildsys_project.cli("bench", "manifest.yaml", *FAST, "--batch", "1").assert_ok().stdout
    assert "skipped stats (text.stats): no runner" in text and "note: no GPU on this host" in text


def test_without_a_gpu_cuda_is_refused_and_gpu_variants_are_skipped(buildsys_project):
    buildsys_project.manifest(tiny_text_manifest({"normalized": "{format: text}"}), files=TINY_TEXT_FILES)
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    host = json.loads(buildsys_project.cli("host", "--json").assert_ok().stdout)["result"]
    assert not host["gpus"], "these tests run on hosts without a GPU (DESIGN.md)"
    buildsys_project.cli("bench", "manifest.yaml", "--device", "cuda").assert_error(2, "this host has no GPU")
    doc = bench_json(buildsys_project, "--batch", "1")
    assert doc["device"] == "cpu" and doc["host"]["id"].endswith(host["cpu_tag"].replace("/", "_"))
    assert any("GPU variants skipped" in n for n in doc["notes"])


def test_a_runner_that_crashes_the_process_costs_only_its_artifact(buildsys_project):
    buildsys_project.write("crashy_plugin.py", CRASHY_PLUGIN)
    targets = {"normalized": "{format: text}", "boom": "{format: fixture.crashy}"}
    buildsys_project.manifest(tiny_text_manifest(targets), files=TINY_TEXT_FILES)
    env = {"PYTHONPATH": os.pathsep.join([str(buildsys_project.root), os.environ.get("PYTHONPATH", "")])}
    buildsys_project.cli("-p", "crashy_plugin", "build", "manifest.yaml", env=env).assert_ok()
    result = buildsys_project.cli("-p", "crashy_plugin", "bench", "manifest.yaml", "--json", *FAST,
                                  "--batch", "1", env=env).assert_ok()
    doc = json.loads(result.stdout)["result"]
    assert [r["variant"] for r in doc["rows"]] == ["normalized"]
    crashed = next(s for s in doc["skipped"] if s["target"] == "boom")
    assert "crashed the process while loading it (signal SIGSEGV)" in crashed["reason"]
    assert "boom: the runtime crashed" in result.stderr


def test_references_compute_at_the_precision_of_the_timed_artifacts(buildsys_project, tiny_manifest):
    pytest.importorskip("torch")
    tiny_manifest({"exported": "{format: exported}", "half": "{format: exported, precision: fp16}"})
    buildsys_project.cli("build", "manifest.yaml", "-t", "exported", "-t", "half").assert_ok()

    both = bench_json(buildsys_project, "--batch", "2", "--memory", "shared")  # fp32 and fp16 artifacts
    by = rows(both)
    assert {v for v, _ in by} == {"eager", "torch.compile", "eager[fp16]", "torch.compile[fp16]", "exported", "half"}
    assert both["baseline"] == "eager" and by[("eager", 2)]["max_abs_diff"] == 0
    # the fp16 module rounds: its outputs differ from fp32 eager's, as the fp16 artifact's do
    assert 0 < by[("eager[fp16]", 2)]["max_abs_diff"] < 0.05 and 0 < by[("half", 2)]["max_abs_diff"] < 0.05
    # ... and is judged by fp16's tolerance, as the fp16 artifact is, not flagged wrong by fp32's
    assert by[("eager[fp16]", 2)]["within_tolerance"] and by[("torch.compile[fp16]", 2)]["within_tolerance"]
    assert any("max-autotune and reduce-overhead" in n for n in both["notes"])
    half_vs_fp32 = by[("half", 2)]["max_abs_diff"]

    only = bench_json(buildsys_project, "--batch", "2", "--memory", "shared", "-t", "half")  # fp16 alone
    by = rows(only)
    assert {v for v, _ in by} == {"eager", "torch.compile", "half"}  # like with like, under the plain names
    assert by[("half", 2)]["max_abs_diff"] < half_vs_fp32 and by[("half", 2)]["within_tolerance"]  # fp16 vs fp16
    assert any("references compute in fp16" in n for n in only["notes"])
