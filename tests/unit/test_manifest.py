"""Manifest loading: every problem is one error with file:line:column and a way out."""

from __future__ import annotations

import json

import pytest

from buildsys import manifest
from buildsys.errors import ManifestError, ManifestErrors

GOOD = """\
schema: 1
name: resnet18
version: 1.2.0
model:
  framework: text
  entrypoint: model.txt
  inputs:
    - {name: images, dtype: float32, shape: [batch, 3, 224, 224]}
  dims:
    batch: {min: 1, opt: 8, max: 32}
calibration: {data: model.txt, method: percentile, percentile: 99.9}
targets:
  portable: {format: text}
  rtx: {format: text.pack, hardware: [sm86, sm89]}
validation: {fp16: {rtol: 0.01, atol: 0.01}}
"""


def write(tmp_path, text, name="m.yaml"):
    (tmp_path / "model.txt").write_text("hi\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(tmp_path, text) -> list[str]:
    with pytest.raises((ManifestErrors, ManifestError)) as info:
        manifest.load(write(tmp_path, text))
    exc = info.value
    return [str(e) for e in getattr(exc, "errors", [exc])]


def test_good_manifest_loads_with_defaults(tmp_path):
    m = manifest.load(write(tmp_path, GOOD))
    assert m.name == "resnet18" and m.targets["portable"].precision == "fp32"
    assert m.model.dims["batch"].ranges() == [(1, 8, 32)]
    assert m.tolerance("fp16").rtol == 0.01
    assert m.tolerance("int8").min_cosine == 0.99  # the default
    assert m.where("targets", "rtx", "hardware").endswith("m.yaml:14:38")


def test_malformed_yaml_points_at_line(tmp_path):
    [error] = errors_of(tmp_path, "schema: 1\nname: x\n  version: 2\n")
    assert "m.yaml:3:" in error and "malformed YAML" in error


def test_unknown_key_did_you_mean(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("validation:", "validaton:"))
    assert "m.yaml:15:1" in error and "unknown key 'validaton'" in error and "did you mean 'validation'" in error


def test_unknown_nested_key_points_at_key(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("portable: {format: text}", "portable: {format: text, hardwre: cpu}"))
    assert "m.yaml:13:" in error and "targets.portable.hardwre" in error and "did you mean 'hardware'" in error


def test_wrong_type(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("max: 32", "max: lots"))
    assert "m.yaml:10:" in error and "model.dims.batch.max" in error


def test_every_problem_reported_once(tmp_path):
    text = GOOD.replace("validation:", "validaton:").replace("max: 32", "max: 0").replace(
        "format: text}", "format: text, precision: int4}")
    errors = errors_of(tmp_path, text)
    assert len(errors) == 3, errors
    assert all("m.yaml:" in e for e in errors)


def test_unknown_hardware_alias(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("[sm86, sm89]", "h1000"))
    assert "unknown hardware 'h1000'" in error and "did you mean 'h100'" in error and "m.yaml:14:" in error


def test_missing_entrypoint_file(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("entrypoint: model.txt", "entrypoint: models/missing.py:build"))
    assert "models/missing.py" in error and "does not exist" in error and "m.yaml:6:" in error


def test_undeclared_dim_did_you_mean(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("shape: [batch,", "shape: [btch,"))
    assert "dim 'btch'" in error and "did you mean 'batch'" in error and "m.yaml:8:" in error


def test_dims_buckets(tmp_path):
    m = manifest.load(write(tmp_path, GOOD.replace("{min: 1, opt: 8, max: 32}", "{buckets: [1-128, 129-512]}")))
    assert m.model.dims["batch"].ranges() == [(1, 128, 128), (129, 512, 512)]
    [error] = errors_of(tmp_path, GOOD.replace("{min: 1, opt: 8, max: 32}", "{buckets: [512, 8]}"))
    assert "ascending" in error


def test_unsupported_schema_version(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("schema: 1", "schema: 2"))
    assert "unsupported schema 2" in error and "m.yaml:1:" in error


def test_duplicate_key(tmp_path):
    [error] = errors_of(tmp_path, GOOD + "name: again\n")
    assert "duplicate key 'name'" in error


@pytest.mark.parametrize("field,value", [("name", "../evil"), ("version", "1/2"), ("name", ".hidden")])
def test_unsafe_names_refused(tmp_path, field, value):
    text = GOOD.replace("name: resnet18", f"name: '{value}'") if field == "name" else GOOD.replace(
        "version: 1.2.0", f"version: '{value}'")
    [error] = errors_of(tmp_path, text)
    assert "not a safe name" in error


def test_unsafe_target_name_refused(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("portable:", "'../portable':"))
    assert "not a safe name" in error


def test_numeric_version_becomes_text(tmp_path):
    assert manifest.load(write(tmp_path, GOOD.replace("version: 1.2.0", "version: 2"))).version == "2"


def test_from_unknown_target(tmp_path):
    [error] = errors_of(tmp_path, GOOD.replace("rtx: {", "rtx: {from: portabel, "))
    assert "unknown target 'portabel'" in error and "did you mean 'portable'" in error


def test_loading_runs_no_code(tmp_path):
    boom = tmp_path / "boom.py"
    boom.write_text("raise SystemExit('entrypoint ran')\n")
    m = manifest.load(write(tmp_path, GOOD.replace("entrypoint: model.txt", "entrypoint: boom.py:build")))
    assert m.model.entrypoint == "boom.py:build"


def test_json_schema_is_complete():
    schema = manifest.json_schema()
    json.dumps(schema)
    assert set(schema["required"]) >= {"schema", "name", "version", "model", "targets"}
    assert "Target" in schema["$defs"] and "hardware" in schema["$defs"]["Target"]["properties"]


def test_a_model_named_by_id_needs_no_entrypoint_and_one_of_them_is_required(tmp_path):
    by_id = GOOD.replace("  entrypoint: model.txt\n", "  id: org/model\n  task: feature-extraction\n")
    loaded = manifest.load(write(tmp_path, by_id))
    assert (loaded.model.id, loaded.model.task, loaded.model.entrypoint) == ("org/model", "feature-extraction", None)
    assert loaded.model.allow_download is False and loaded.model.trust_remote_code is False
    [problem] = errors_of(tmp_path, GOOD.replace("  entrypoint: model.txt\n", ""))
    assert "model.entrypoint and model.id are both empty" in problem and "m.yaml:5:3" in problem  # the model block


@pytest.mark.parametrize("weights, fragments", [
    ("package:no_such_pkg_xyz/w.safetensors", ["'package:no_such_pkg_xyz/w.safetensors': package 'no_such_pkg_xyz' is not installed"]),
    ("package:buildsys/no_such.safetensors", ["'package:buildsys/no_such.safetensors' does not exist (looked for ",
                                              "buildsys/no_such.safetensors)", "check the path inside the package"]),
])
def test_weights_in_a_package_say_what_is_missing_at_the_line(tmp_path, weights, fragments):
    [error] = errors_of(tmp_path, GOOD.replace("entrypoint: model.txt", f"entrypoint: model.txt\n  weights: {weights}"))
    assert "m.yaml:7:" in error and all(f in error for f in fragments), error


FILE_MODEL = """schema: 1
name: m
version: 1.0.0
model:
  framework: onnx
  entrypoint: net.onnx
{extra}targets:
  a: {{format: onnx}}
"""
GRAPH_INPUTS = [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}]


def test_with_signature_fills_inputs_a_file_declares(tmp_path):
    (tmp_path / "net.onnx").write_bytes(b"x")
    m = manifest.load(write(tmp_path, FILE_MODEL.format(extra="  dims: {batch: {min: 1, max: 4}}\n")))
    filled = m.with_signature(GRAPH_INPUTS, "net.onnx")
    assert [(i.name, i.shape) for i in filled.model.inputs] == [("x", ["batch", 8])]
    assert filled.path == m.path and filled.where("model", "entrypoint") == m.where("model", "entrypoint")
    assert filled.model_block()["inputs"][0]["name"] == "x"  # what workers and the fingerprint see


def test_with_signature_keeps_the_manifests_own_inputs(tmp_path):
    (tmp_path / "net.onnx").write_bytes(b"x")
    extra = "  inputs: [{name: x, dtype: float16, shape: [2, 8]}]\n"
    m = manifest.load(write(tmp_path, FILE_MODEL.format(extra=extra)))
    assert m.with_signature(GRAPH_INPUTS, "net.onnx") is m


def test_with_signature_names_a_dynamic_dim_without_range_and_the_line_to_add(tmp_path):
    (tmp_path / "net.onnx").write_bytes(b"x")
    m = manifest.load(write(tmp_path, FILE_MODEL.format(extra="")))
    with pytest.raises(ManifestErrors) as info:
        m.with_signature(GRAPH_INPUTS, "net.onnx")
    (error,) = info.value.errors
    assert error.where.endswith("m.yaml:6:15")
    assert "input 'x' axis 0 is the dynamic dim 'batch'" in error.message
    assert error.hint == "add under model.dims:  batch: {min: 1, opt: 8, max: 64}"


def test_validation_rules_per_output_keep_the_default_for_the_other_outputs(tmp_path):
    per_output = "validation: {fp16: {outputs: {logits: {min_top1: 0.98}, hidden: {min_cosine: 0.99}}}}"
    m = manifest.load(write(tmp_path, GOOD.replace("validation: {fp16: {rtol: 0.01, atol: 0.01}}", per_output)))
    fp16 = m.tolerance("fp16")
    assert fp16.rule("logits").min_top1 == 0.98 and fp16.rule("logits").rtol is None  # its block is its whole rule
    assert fp16.rule("hidden").min_cosine == 0.99
    assert fp16.rule("mask") == fp16 and (fp16.rtol, fp16.atol_scale) == (1e-2, "output")  # the fp16 default
    both = "validation: {int8: {min_cosine: 0.98, outputs: {logits: {min_top1: 0.9}}}}"
    int8 = manifest.load(write(tmp_path, GOOD.replace("validation: {fp16: {rtol: 0.01, atol: 0.01}}", both)))
    assert int8.tolerance("int8").rule("hidden").min_cosine == 0.98


def test_a_misspelt_metric_in_an_output_block_is_named_with_its_line(tmp_path):
    text = GOOD.replace("validation: {fp16: {rtol: 0.01, atol: 0.01}}",
                        "validation: {fp16: {outputs: {logits: {min_top: 0.98}}}}")
    [error] = errors_of(tmp_path, text)
    assert "m.yaml:15:" in error and "min_top" in error and "min_top1" in error, error
