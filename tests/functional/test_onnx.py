"""The ONNX plugin end to end: opset choice, conversion, dims, external data, ORT levels, hooks.

Exit codes, as the CLI documents them: an opset no consumer accepts is known before anything
runs, so the target is refused at plan time (3, nothing built); an opset that is accepted but
that this model cannot be converted to is only found by exporting, so the node fails (1).
Either way no artifact directory is written for the target.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from buildsys import InputArtifact
from buildsys.testing import ProjectDir

onnx = pytest.importorskip("onnx")  # the onnx and torch extras are installed in CI: never skips there
pytest.importorskip("torch")
np = pytest.importorskip("numpy")

TESTS = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "onnx", "onnxruntime", "onnxscript", "tensorrt", "tensorrt_rtx", "jax"}

CNN = """
schema: 1
name: cnn
version: 1.0.0
model:
  framework: torch
  entrypoint: models/onnx_cases.py:build
  inputs: [{name: images, dtype: float32, shape: [batch, 3, 8, 8]}]
  dims: {batch: {min: 1, opt: 2, max: 8}}
targets:
  portable:  {format: onnx}
  fixed:     {format: onnx, options: {onnx.export: {opset: 20}}}
  ranged:    {format: onnx, options: {onnx.export: {opset: {min: 17, max: 21}}}}
  trt-ready: {format: onnx, options: {onnx.export: {consumers: [onnxruntime, tensorrt]}}}
  external:  {format: onnx, options: {onnx.export: {external_data: true}}}
  optimized: {format: onnx.ort}
  basic:     {format: onnx.ort, options: {onnx.ort: {level: basic}}}
  native:    {format: onnx.ort, options: {onnx.ort: {level: all}}}
  old-ort:   {format: onnx, runtimes: {onnxruntime: ">=1.14,<2"}}
"""

SMALL = """
schema: 1
name: small
version: 1.0.0
model:
  framework: torch
  entrypoint: models/onnx_cases.py:{fn}
  inputs: [{{name: x, dtype: float32, shape: [batch, 8]}}]
  dims: {{batch: {{min: 1, opt: 2, max: 4}}}}
targets:
  {targets}
"""


def with_models(project: ProjectDir, text: str) -> ProjectDir:
    shutil.copytree(TESTS / "models", project.root / "models", dirs_exist_ok=True)
    project.manifest(text)
    return project


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> ProjectDir:
    """The CNN manifest, every target built once for the module."""
    project = with_models(ProjectDir(tmp_path_factory.mktemp("cnn") / "project"), CNN)
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    return project


def record(project: ProjectDir, target: str, name: str = "cnn") -> dict:
    return json.loads((project.target_dir(name, "1.0.0", target) / "artifact.json").read_text())


def primary(project: ProjectDir, target: str, name: str = "cnn") -> Path:
    entry = next(f for f in record(project, target, name)["files"] if f["role"] == "primary")
    return project.target_dir(name, "1.0.0", target) / entry["name"]


def opset_of(path: Path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def plugin_env() -> dict:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}


# -- opsets ------------------------------------------------------------------------------------


def test_auto_opset_is_recorded_with_the_limiting_component(cnn):
    from buildsys_onnx import opsets

    expected = opsets.choose("auto", ["onnxruntime"])
    rec = record(cnn, "portable")
    assert rec["meta"]["opset"] == expected.opset == opset_of(primary(cnn, "portable"))
    assert rec["meta"]["opset_reason"].startswith(f"opset {expected.opset}: the highest")
    assert "limited by" in rec["meta"]["opset_reason"] and rec["meta"]["opset_limits"]
    assert rec["validation"]["status"] == "passed" and rec["validation"]["samples"] == 3
    assert primary(cnn, "portable").name == f"cnn-1.0.0-onnx-fp32-opset{expected.opset}-any.onnx"


def test_explicit_opset_is_honoured_in_the_file(cnn):
    rec = record(cnn, "fixed")
    assert opset_of(primary(cnn, "fixed")) == 20 == rec["meta"]["opset"]
    assert rec["meta"]["opset_limited_by"] == ["request"] and "asked for explicitly" in rec["meta"]["opset_reason"]
    assert rec["validation"]["status"] == "passed"


def test_opset_range_takes_its_highest_accepted(cnn):
    assert opset_of(primary(cnn, "ranged")) == 21
    assert "top of the requested range" in record(cnn, "ranged")["meta"]["opset_reason"]


def test_a_tensorrt_consumer_caps_the_opset(cnn):
    meta = record(cnn, "trt-ready")["meta"]
    assert meta["opset"] == 25 == opset_of(primary(cnn, "trt-ready"))
    assert meta["consumers"] == ["onnxruntime", "tensorrt"]
    assert any("tensorrt" in who for who in meta["opset_limited_by"]), meta["opset_reason"]


def test_a_targets_runtimes_cap_the_opset_and_the_ir_version(cnn):
    """runtimes: {onnxruntime: ">=1.14,<2"}: every release from 1.14 must load it, so opset 18 and
    IR version 8 (onnxruntime's compatibility table), not what the installed one takes."""
    rec = record(cnn, "old-ort")
    model = onnx.load(str(primary(cnn, "old-ort")), load_external_data=False)
    assert opset_of(primary(cnn, "old-ort")) == 18 == rec["meta"]["opset"]
    assert model.ir_version == 8 == rec["meta"]["ir_version"] < rec["meta"]["emitted_ir_version"]
    assert rec["runtimes"] == {"onnxruntime": ">=1.14,<2"} == rec["meta"]["runtimes"]
    assert rec["meta"]["opset_limited_by"] == ["runtimes.onnxruntime"]
    assert "onnxruntime >=1.14,<2 (from 1.14; the target's runtimes)" in rec["meta"]["opset_reason"]
    assert rec["validation"]["status"] == "passed"
    assert "runtimes" not in record(cnn, "portable") and record(cnn, "portable")["meta"]["opset"] > 18


@pytest.mark.parametrize("target,code,fragments", [
    ('bad: {format: onnx, runtimes: {onnxruntime: ">>1.2"}}', 2, ["'>>1.2' is not a version specifier", "manifest.yaml:"]),
    ('pt2: {format: torch.exported, runtimes: {onnxruntime: ">=1.16"}}', 3,
     ["target 'pt2' sets runtimes, which no stage of its chain (torch.export) can honour"]),
    ('ov: {format: onnx, runtimes: {openvino: ">=2024.0"}}', 3,
     ["runtimes.openvino: onnx.export caps the graph for onnxruntime, tensorrt, tensorrt-rtx, not openvino"]),
    ('none: {format: onnx, runtimes: {onnxruntime: "<1.0"}}', 3, ["no onnxruntime release admits '<1.0'"]),
])
def test_runtimes_that_cannot_be_honoured_are_refused_before_building(buildsys_project, target, code, fragments):
    with_models(buildsys_project, SMALL.format(fn="build", targets=target))
    buildsys_project.cli("build", "manifest.yaml").assert_error(code, *fragments)
    assert not (buildsys_project.root / "artifacts" / "small").exists()


def test_unreachable_opset_is_refused_at_plan_time(buildsys_project):
    with_models(buildsys_project, SMALL.format(fn="build", targets="ancient: {format: onnx, options: {onnx.export: {opset: 6}}}"))
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(3, "target 'ancient'", "stage 'onnx.export'", "opset 6 is not accepted by onnxruntime")
    assert result.nodes("built") == [] and not buildsys_project.target_dir("small", "1.0.0", "ancient").exists()


def test_conversion_that_an_operator_blocks_fails_naming_it(buildsys_project):
    with_models(buildsys_project, SMALL.format(fn="layernorm", targets="old: {format: onnx, options: {onnx.export: {opset: 16}}}"))
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "onnx.export#", "[targets: old]", "cannot be converted to opset 16",
                        "LayerNormalization (does not exist before opset 17)")
    result.assert_nodes(built=["torch.export"], failed=["onnx.export"])
    assert not buildsys_project.target_dir("small", "1.0.0", "old").exists()


# -- graph, dims, external data ----------------------------------------------------------------


def test_dynamic_batch_named_after_the_manifest_and_run_at_two_sizes(cnn):
    from buildsys_onnx.runtime import load_runner

    model = onnx.load(str(primary(cnn, "portable")))
    assert [i.name for i in model.graph.input] == ["images"]
    assert [o.name for o in model.graph.output] == ["logits", "features"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in model.graph.output)
    rec = record(cnn, "portable")
    run = load_runner(InputArtifact("onnx", "fp32", "any", primary(cnn, "portable").parent,
                                    {primary(cnn, "portable").name: primary(cnn, "portable")},
                                    dict(rec["meta"], primary=primary(cnn, "portable").name)), "cpu")
    images = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    logits, features = run([images])
    assert logits.shape == (5, 4) and features.shape == (5, 16)
    one = run([images[2:3]])
    np.testing.assert_allclose(one[0], logits[2:3], rtol=1e-5, atol=1e-6)


def test_external_data_lives_beside_the_model_and_loads_from_the_artifact(cnn):
    import onnxruntime as ort

    rec = record(cnn, "external")
    assert sorted(f["role"] for f in rec["files"]) == ["data", "primary"]
    assert {f["name"] for f in rec["files"] if f["role"] == "data"} == {"model.onnx.data"}
    assert rec["meta"]["external_data"] is True and rec["validation"]["status"] == "passed"
    session = ort.InferenceSession(str(primary(cnn, "external")), providers=["CPUExecutionProvider"])
    images = np.ones((3, 3, 8, 8), np.float32)
    reference = ort.InferenceSession(str(primary(cnn, "portable")), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"images": images})[0],
                               reference.run(None, {"images": images})[0], rtol=1e-5, atol=1e-6)


# -- ONNX Runtime optimization -----------------------------------------------------------------


def test_ort_levels_and_the_host_tag_for_all(cnn):
    basic, extended, native = (record(cnn, t) for t in ("basic", "optimized", "native"))
    assert (basic["hardware"], extended["hardware"]) == ("any", "any")
    assert (basic["meta"]["level"], extended["meta"]["level"], native["meta"]["level"]) == ("basic", "extended", "all")
    assert native["hardware"] == native["host"]["cpu_tag"] and native["meta"]["host_specific"] is True
    assert native["hardware"].replace("-", "_") in primary(cnn, "native").name
    assert all(r["validation"]["status"] == "passed" for r in (basic, extended, native))
    assert [step["stage"] for step in native["chain"]][-2:] == ["onnx.export", "onnx.ort"]


def test_noop_rebuild_imports_no_ml_framework(cnn, tmp_path):
    trace = tmp_path / "trace.jsonl"
    result = cnn.cli("build", "manifest.yaml", env={"BUILDSYS_TRACE_IMPORTS": str(trace)}).assert_ok()
    assert result.nodes("built") == []
    [cli] = [json.loads(line) for line in trace.read_text().splitlines() if '"process": "cli"' in line]
    assert sorted({m.split(".")[0] for m in cli["modules"]} & HEAVY) == []


# -- unsupported operators and the translation hook --------------------------------------------


def test_unmapped_operators_are_all_listed_then_a_plugin_translates_them(buildsys_project):
    with_models(buildsys_project, SMALL.format(fn="custom", targets="portable: {format: onnx}"))
    failed = buildsys_project.cli("build", "manifest.yaml")
    failed.assert_error(1, "[targets: portable]", "no translation for 2 operator(s)",
                        "torch.ops.buildsys_test.scale.default (1 node)",
                        "torch.ops.buildsys_test.shift.default (1 node)",
                        "models/onnx_cases.py", "y = scale(self.fc(x), 2.0)", "return shift(y, 0.5)",
                        "buildsys_onnx_translations", "a newer opset", "rewrite the model")
    assert re.search(r"onnx_cases\.py:\d+ in forward", failed.stderr)
    assert not buildsys_project.target_dir("small", "1.0.0", "portable").exists()

    clash = buildsys_project.cli("-p", "fixture_plugins.onnx_translations", "-p", "fixture_plugins.onnx_translations_again",
                                 "build", "manifest.yaml", env=plugin_env())
    clash.assert_error(1, "torch.ops.buildsys_test.scale.default has an ONNX translation from both",
                       "'fixture_plugins.onnx_translations'", "'fixture_plugins.onnx_translations_again'")

    built = buildsys_project.cli("-p", "fixture_plugins.onnx_translations", "build", "manifest.yaml", "--json",
                                 env=plugin_env()).assert_ok()
    statuses = {node.split("#")[0]: o["status"] for node, o in json.loads(built.stdout)["result"]["nodes"].items()
                if "#" in node}
    assert statuses == {"torch.export": "cached", "onnx.export": "built", "torch.reference": "built",
                        "validate": "built"}, statuses
    rec = record(buildsys_project, "portable", "small")
    assert rec["validation"]["status"] == "passed"
    assert rec["meta"]["translations"] == {"torch.ops.buildsys_test.scale.default": "fixture_plugins.onnx_translations",
                                           "torch.ops.buildsys_test.shift.default": "fixture_plugins.onnx_translations"}
    # the translation plugins are part of the export's action key: without them it is not a hit
    without = buildsys_project.cli("build", "manifest.yaml")
    without.assert_error(1, "no translation for 2 operator(s)")
