"""The JAX path end to end on a tiny pure-JAX model: StableHLO for a platform set, XLA executables
for this host, validation against the jitted function, and every bad input."""

from __future__ import annotations

import json

import pytest

from buildsys import InputArtifact, StageFailed
from buildsys.testing import ProjectDir

jax = pytest.importorskip("jax")  # the jax extra is installed in CI: this skip never hides a feature there
np = pytest.importorskip("numpy")

MODEL = '''
import jax
import jax.numpy as jnp
import numpy as np


def params(seed=0):
    rng = np.random.default_rng(seed)
    return {"dense": [{"w": rng.standard_normal((8, 4)).astype(np.float32),
                       "b": rng.standard_normal(4).astype(np.float32)}]}


def apply(p, x):
    y = jnp.tanh(x @ p["dense"][0]["w"] + p["dense"][0]["b"])
    return {"probs": jax.nn.softmax(y), "y": y}


def build():
    return apply, params()


def bare():
    return lambda x: x * 2.0


def raises():
    raise ValueError("the config file is missing")


def fixed_batch():
    return (lambda p, x: apply(p, x + jnp.ones((4, 8)))), params()


def samples():
    rng = np.random.default_rng(7)
    return [{"x": rng.standard_normal((2, 8)).astype(np.float32)}, [rng.standard_normal((8, 8)).astype(np.float32)]]
'''

MANIFEST = """
schema: 1
name: tiny
version: 1.0.0
model:
  framework: jax
  entrypoint: model.py:{fn}
  inputs: [{{name: x, dtype: float32, shape: [batch, {features}]}}]
  dims: {{batch: {{min: 1, opt: 4, max: 8}}}}
  {extra}
targets:
  {targets}
"""

TARGETS = """stablehlo: {format: stablehlo, options: {jax.export: {platforms: [tpu, cpu, cuda]}}}
  xla: {format: xla.executable, from: stablehlo, options: {xla.compile: {sizes: {batch: [2, 8]}}}}
  tpu-only: {format: stablehlo, hardware: tpu}"""


def tiny(project: ProjectDir, fn="build", features=8, extra="", targets="stablehlo: {format: stablehlo}", files=None):
    text = MANIFEST.format(fn=fn, features=features, extra=extra, targets=targets)
    return project.manifest(text, files={"model.py": MODEL, **(files or {})})


def record(project: ProjectDir, target: str) -> dict:
    return json.loads((project.target_dir("tiny", "1.0.0", target) / "artifact.json").read_text())


def artifact(project: ProjectDir, target: str) -> InputArtifact:
    """The artifact as a runner receives it, from its artifact.json."""
    directory = project.target_dir("tiny", "1.0.0", target)
    rec = record(project, target)
    files = {f["name"]: directory / f["name"] for f in rec["files"]}
    primary = next(f["name"] for f in rec["files"] if f["role"] == "primary")
    return InputArtifact(rec["kind"], rec["precision"], rec["hardware"], directory, files, dict(rec["meta"], primary=primary))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> ProjectDir:
    """StableHLO for tpu+cpu+cuda, the host's XLA executables from it (for the samples' batch
    sizes, 2 and 8), and a tpu-only export; the params come from a weights file."""
    project = ProjectDir(tmp_path_factory.mktemp("jax") / "project")
    tiny(project, targets=TARGETS, extra="weights: weights.npz\n  samples: model.py:samples")
    weights = {"dense/0/w": np.full((8, 4), 0.25, np.float32), "dense/0/b": np.arange(4, dtype=np.float32)}
    np.savez(project.root / "weights.npz", **weights)
    result = project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    result.assert_nodes(built=["jax.export", "jax.export", "jax.reference", "xla.compile", "validate", "validate"])
    return project


# -- what a good build produces ---------------------------------------------------------------


def test_stablehlo_is_tagged_with_its_platform_set_and_validated(built):
    rec = record(built, "stablehlo")
    assert rec["hardware"] == "cpu.cuda.tpu" and rec["kind"] == "stablehlo"
    meta = rec["meta"]
    assert meta["platforms"] == ["cpu", "cuda", "tpu"]  # canonical order, whatever the manifest's
    assert meta["calling_convention_version"] >= 9 and meta["tool_tag"] == f"cc{meta['calling_convention_version']}"
    assert meta["in_avals"] == ["float32[batch,8]"] and meta["output_names"] == ["probs", "y"]
    assert rec["validation"]["status"] == "passed" and rec["validation"]["samples"] == 2  # the manifest's samples
    assert rec["validation"]["runner"] == "jax.export"
    names = {f["name"]: f["role"] for f in rec["files"]}
    assert names == {"tiny-1.0.0-stablehlo-fp32-cc%d-cpu.cuda.tpu.jax_exported" % meta["calling_convention_version"]: "primary",
                     "model.mlir": "data"}
    text = (built.target_dir("tiny", "1.0.0", "stablehlo") / "model.mlir").read_text()
    assert "stablehlo.dot_general" in text and "tensor<?x8xf32>" in text and "batch <= 8" in text


def test_executables_are_tagged_with_what_xla_compiled_for(built):
    rec = record(built, "xla")
    assert rec["hardware"] == rec["host"]["cpu_tag"] and rec["kind"] == "xla.executable"
    meta = rec["meta"]
    assert (meta["platform"], meta["device_kind"], meta["compiled_for"]) == ("cpu", "cpu", rec["hardware"])
    assert meta["sizes"] == [{"batch": 2}, {"batch": 8}]
    assert meta["tool_tag"] == f"jaxlib{jax.__version__}" and rec["deterministic"] is False
    assert rec["validation"]["status"] == "passed" and rec["validation"]["runner"] == "xla.executable"
    assert [step["stage"] for step in rec["chain"]] == ["source", "jax.export", "xla.compile"]


def test_a_platform_this_host_lacks_is_built_but_not_validated(built):
    rec = record(built, "tpu-only")
    assert rec["hardware"] == "tpu" and rec["meta"]["platforms"] == ["tpu"]  # auto: the target's hardware
    assert rec["validation"] == {"status": "not run", "reason": "it runs on tpu, which this host lacks"}


def test_weights_file_replaces_the_params(built):
    from buildsys_jax.runtime import load_stablehlo

    run = load_stablehlo(artifact(built, "stablehlo"), "cpu")
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(3, 8)
    y = np.tanh(x @ np.full((8, 4), 0.25, np.float32) + np.arange(4, dtype=np.float32))
    probs, got = run([x])
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(-1), np.ones(3), rtol=1e-5)


def test_runners_refuse_inputs_the_artifact_was_not_built_for(built):
    from buildsys_jax.runtime import load_stablehlo, load_xla

    export_run = load_stablehlo(artifact(built, "stablehlo"), "cpu")
    with pytest.raises(StageFailed, match=r"'x' axis 0 \(batch\) is 9, outside 1..8"):
        export_run([np.zeros((9, 8), np.float32)])
    with pytest.raises(StageFailed, match=r"'x' axis 1 is 3, expected 8"):
        export_run([np.zeros((2, 3), np.float32)])
    xla_run = load_xla(artifact(built, "xla"), "cpu")
    x = np.linspace(-2, 2, 16, dtype=np.float32).reshape(2, 8)
    np.testing.assert_allclose(xla_run([x])[1], export_run([x])[1], rtol=1e-6, atol=1e-6)
    with pytest.raises(StageFailed, match=r"no executable for input shapes \[\[4, 8\]\].*sizes"):
        xla_run([np.ones((4, 8), np.float32)])


def test_noop_rebuild_imports_no_jax_and_the_lock_records_the_tags(built, tmp_path):
    trace = tmp_path / "trace.jsonl"
    again = built.cli("build", "manifest.yaml", env={"BUILDSYS_TRACE_IMPORTS": str(trace)}).assert_ok()
    assert again.nodes("built") == []
    [cli] = [json.loads(line) for line in trace.read_text().splitlines() if '"process": "cli"' in line]
    assert "buildsys_jax" in cli["modules"] and not {"jax", "jaxlib"} & {m.split(".")[0] for m in cli["modules"]}
    lock = built.lock().read_text()
    assert 'hardware = "cpu.cuda.tpu"' in lock and 'hardware = "tpu"' in lock and "jaxlib" in lock


# -- the plan: platforms, hardware --------------------------------------------------------------


def test_unknown_platform_is_refused_at_plan_time(buildsys_project):
    tiny(buildsys_project, targets="odd: {format: stablehlo, options: {jax.export: {platforms: [cpu, gpu]}}}")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(3, "target 'odd'", "unknown platform 'gpu'", "did you mean 'cuda'?")
    assert result.nodes("built") == []


def test_requested_hardware_must_be_covered_by_the_platforms(buildsys_project):
    tiny(buildsys_project, targets="tpu: {format: stablehlo, hardware: tpu, options: {jax.export: {platforms: [cpu]}}}\n"
                                   "  gpu-exe: {format: xla, hardware: h100}\n"
                                   "  h100: {format: stablehlo, hardware: h100}")
    result = buildsys_project.cli("plan", "manifest.yaml")
    assert result.exit_code == 3
    assert "target 'tpu' asks for tpu, but stage 'jax.export' builds for cpu" in result.stdout + result.stderr
    assert "needs cuda-sm90, the host has none, and stage 'xla.compile' is not ahead-of-time capable" in result.stdout + result.stderr
    assert "[stablehlo fp32 cuda platforms=cuda]" in result.stdout  # lowering for a GPU needs none (auto chose cuda)


# -- bad input: clear errors, nothing written ---------------------------------------------------


# More bad models (wrong structures, a dim the function constrains, an operation a platform
# cannot lower) are checked in-process in tests/unit/test_jax_*.py; these go through the CLI.
@pytest.mark.parametrize("fn,features,fragments", [
    ("raises", 8, ["raised ValueError: the config file is missing", "model.py:"]),
    ("build", 16, ["does not accept the manifest's inputs (x: float32[4, 16])", "model.py:", "check model.inputs"]),
    ("fixed_batch", 8, ["cannot lower the function for every size the manifest's dims allow (batch: 1..8)",
                        "model.py:", "narrow the dim in model.dims"]),
])
def test_bad_models_fail_the_export_clearly(buildsys_project, fn, features, fragments):
    tiny(buildsys_project, fn=fn, features=features)
    result = buildsys_project.cli("build", "manifest.yaml", "-j", "1")
    result.assert_error(1, "jax.export#", "[targets: stablehlo]", *fragments)
    assert not buildsys_project.target_dir("tiny", "1.0.0", "stablehlo").exists()


def test_weights_that_do_not_match_the_params(buildsys_project):
    np.savez(buildsys_project.root / "bad.npz", **{"dense/0/w": np.zeros((3, 3), np.float32), "extra": np.zeros(1)})
    tiny(buildsys_project, extra="weights: bad.npz")
    result = buildsys_project.cli("build", "manifest.yaml", "-j", "1")
    result.assert_error(1, "the weights do not match the params pytree", "missing 1: dense/0/b", "unexpected 1: extra",
                        "dense/0/w: file float32[3, 3] != params float32[8, 4]")


def test_executable_from_an_export_without_the_host_platform(buildsys_project):
    tiny(buildsys_project, fn="bare", targets="exe: {format: xla, options: {jax.export: {platforms: [tpu]}}}")
    result = buildsys_project.cli("build", "manifest.yaml", "-j", "1")
    result.assert_error(1, "xla.compile#", "the StableHLO input was lowered for tpu, not cpu", "platforms")
