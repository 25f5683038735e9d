"""Layer-wise accuracy debugging (issue 21): planted faults are named as the first diverging
node, automatically in a failed validation's message and on demand with ``buildsys debug``.

Both models live in tests/models/planted_faults.py; one project folder (one cache) for the module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from buildsys.testing import ProjectDir

pytest.importorskip("onnx")  # the precision extra is installed in CI: never skips there
pytest.importorskip("modelopt")

TESTS = Path(__file__).resolve().parents[1]

OVERFLOW = """
schema: 1
name: over
version: 1.0.0
model:
  framework: torch
  entrypoint: models/planted_faults.py:overflow
  samples: models/planted_faults.py:overflow_samples
  inputs: [{name: x, dtype: float32, shape: [batch, seq, 16]}]
  dims: {batch: {min: 1, opt: 2, max: 4}, seq: {min: 1, opt: 8, max: 16}}
targets:
  onnx: {format: onnx}
  fp16: {format: onnx, precision: fp16}
"""

CLIPPED = """
schema: 1
name: clip
version: 1.0.0
model:
  framework: torch
  entrypoint: models/planted_faults.py:clipped
  samples: models/planted_faults.py:clipped_samples
  inputs: [{name: x, dtype: float32, shape: [batch, seq, 32]}, {name: gain, dtype: float32, shape: [batch, 1, 1]}]
  dims: {batch: {min: 1, opt: 2, max: 4}, seq: {min: 1, opt: 8, max: 16}}
calibration: {data: models/planted_faults.py:clipped_calibration, samples: 16, method: max%s}
targets:
  int8: {format: onnx, precision: int8}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectDir:
    project = ProjectDir(tmp_path_factory.mktemp("accuracy") / "project")
    shutil.copytree(TESTS / "models", project.root / "models")
    project.manifest(OVERFLOW, name="over.yaml")
    project.manifest(CLIPPED % "", name="clip.yaml")
    return project


@pytest.fixture(scope="module")
def overflow(project) -> ProjectDir:
    project.cli("build", "over.yaml").assert_ok()
    return project


@pytest.fixture(scope="module")
def clipped(project) -> ProjectDir:
    result = project.cli("build", "clip.yaml")
    result.assert_error(1, "validation against the source model failed")
    project.clipped_failure = result.stderr
    return project


def test_a_badly_clipped_int8_layer_is_named_first_in_the_failure_message(clipped):
    line = next(x for x in clipped.clipped_failure.splitlines() if "first diverging nodes" in x)
    first = line.split(": ", 1)[1].split(";")[0]
    assert "(scaled)" in first, line  # the module whose input range calibration clipped, not fc1 or fc3
    assert "buildsys debug MANIFEST -t int8" in clipped.clipped_failure


def test_debug_ranks_the_clipped_layer_first_with_its_module_and_source(clipped):
    out = clipped.cli("debug", "clip.yaml", "-t", "int8", "--json").assert_ok()
    report = json.loads(out.stdout)["result"]
    first = report["nodes"][0]
    assert (first["op_type"], first["module"]) == ("MatMul", "scaled")
    assert first["source"].startswith("models/planted_faults.py:")
    assert first["added"] > 0.5 and first["cosine"] < 0.95
    assert all(r["added"] < first["added"] / 5 for r in report["nodes"][1:])  # the rest merely inherit
    assert report["compared"] == len(report["nodes"]) >= 6 and report["samples"] == 2


def test_debug_names_the_layer_that_overflows_fp16(overflow):
    out = overflow.cli("debug", "over.yaml", "-t", "fp16", "--top", "2").assert_ok()
    lines = out.stdout.splitlines()
    header = next(i for i, x in enumerate(lines) if x.startswith("rank"))
    assert lines[header + 1].split()[:2] == ["1", "inf"] and "amplify" in lines[header + 1], out.stdout
    assert len([x for x in lines if x[:1].isdigit()]) == 2  # --top 2
    assert "MatMul node_" in lines[-1] and "(amplify) adds inf (non-finite values)" in lines[-1]


def test_debug_on_an_fp32_target_is_an_input_error(overflow):
    overflow.cli("debug", "over.yaml", "-t", "onnx").assert_error(2, "target 'onnx' (onnx, fp32) has no reduced "
                                                                     "precision to debug")


def test_debug_on_a_target_not_built_says_build_it_first(project):
    project.manifest(OVERFLOW.replace("opt: 8", "opt: 9"), name="fresh.yaml")  # another model block: nothing cached
    project.cli("debug", "fresh.yaml", "-t", "fp16").assert_error(10, "is not built here", "buildsys build fresh.yaml")


def test_the_report_page_names_the_clipped_layer_of_a_target_whose_validation_failed(clipped, tmp_path):
    clipped.cli("report", "clip.yaml", "--layers", "--top", "3", "-o", str(tmp_path)).assert_ok()
    page = (tmp_path / "report.html").read_text()
    section = page.split("<h2>Layer-wise accuracy</h2>", 1)[1].split("<tbody>", 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", section)]
    assert len(rows) == 3 and rows[0][:3] == ["int8", "1", "MatMul"], rows  # int8 has no artifact.json: it failed
    assert rows[0][4] == "scaled" and rows[0][5].startswith("models/planted_faults.py:"), rows[0]
    assert float(rows[0][9]) < 0.95


def test_debug_help_teaches_the_measure():
    from click.testing import CliRunner

    from buildsys.cli.app import cli

    text = CliRunner().invoke(cli, ["debug", "--help"]).output
    for fragment in ("||reduced - fp32|| / ||fp32||", "exclude: auto", "--top", "--json", "exit 2"):
        assert fragment in " ".join(text.split()), fragment


def test_exclusions_by_module_path_and_op_type_keep_those_nodes_in_float(clipped):
    clipped.manifest(CLIPPED % ", exclude: [scaled, 'op:Relu']", name="clip.yaml")
    clipped.cli("build", "clip.yaml").assert_ok()  # the clipped layer stays fp32: accuracy holds
    record = json.loads((clipped.target_dir("clip", "1.0.0", "int8") / "artifact.json").read_text())
    quantization = record["meta"]["quantization"]
    assert len(quantization["left_out_nodes"]) == 1 and quantization["quantized_nodes"] == 2  # scaled's MatMul
    assert quantization["excluded_by_manifest"] == quantization["left_out_nodes"] + ["node_relu"]  # op:Relu


@pytest.mark.parametrize("pattern, fragments", [
    ("encoder.layer.*.dense", ("'encoder.layer.*.dense' matches no node, op type or module path", "close matches:")),
    ("scaeld", ("'scaeld' matches no node", "close matches: scaled")),
    ("op:Matmul", ("'op:Matmul' matches no node", "close op types: op:MatMul")),
])
def test_an_exclude_entry_matching_nothing_is_named_with_close_matches(clipped, pattern, fragments):
    clipped.manifest(CLIPPED % f", exclude: ['{pattern}']", name="typo.yaml")
    clipped.cli("build", "typo.yaml").assert_error(2, "calibration.exclude:", *fragments)



@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_a_lowering_exclude_entry_matching_nothing_is_a_manifest_error(project, precision):
    target = f"{precision}: {{format: onnx, precision: {precision}, options: {{onnx.{precision}: {{exclude: [amplfy]}}}}}}"
    project.manifest(OVERFLOW.replace("fp16: {format: onnx, precision: fp16}", target), name=f"typo-{precision}.yaml")
    project.cli("build", f"typo-{precision}.yaml", "-t", precision).assert_error(
        2, f"options.onnx.{precision}.exclude: 'amplfy' matches no node", "close matches: amplify")

def test_a_rule_for_an_output_the_model_lacks_is_a_manifest_error_with_close_matches(clipped):
    clipped.manifest(CLIPPED % "" + "validation: {int8: {outputs: {outptu: {min_cosine: 0.5}}}}\n", name="out.yaml")
    clipped.cli("build", "out.yaml").assert_error(2, "validation.int8.outputs names 'outptu', not an output of the "
                                                  "model (its outputs: output)", "'outptu': did you mean output?")


def test_a_rule_declared_for_an_output_is_the_one_it_is_judged_by(clipped):
    # its own name: the module's project already holds clip.yaml's artifacts under "clip"
    manifest = (CLIPPED % "").replace("name: clip", "name: clipout")
    clipped.manifest(manifest + "validation: {int8: {outputs: {output: {min_cosine: 0.5}}}}\n", name="out.yaml")
    clipped.cli("build", "out.yaml").assert_ok()  # the default int8 rule (min_cosine 0.99) fails it
    validation = json.loads((clipped.target_dir("clipout", "1.0.0", "int8") / "artifact.json").read_text())["validation"]
    assert validation["tolerance"]["outputs"] == {"output": {"min_cosine": 0.5}}, validation
    assert 0.5 <= validation["outputs"][0]["cosine"] < 0.99

# -- exclude: auto --------------------------------------------------------------------------


def _auto_record(project: ProjectDir, name: str, target: str) -> dict:
    return json.loads((project.target_dir(name, "1.0.0", target) / "artifact.json").read_text())["meta"]["exclude_auto"]


def test_exclude_auto_keeps_nothing_when_the_tolerance_already_holds(project):
    # ONNX Runtime's optimized CPU session computes amplify in fp32 (casts removed), so the fp16
    # target validates although the layer-wise (unoptimized) comparison sees it overflow
    project.manifest(OVERFLOW.replace("name: over", "name: overauto").replace(
        "fp16: {format: onnx, precision: fp16}", "fp16: {format: onnx, precision: fp16, options: {onnx.fp16: {exclude: auto}}}"),
        name="overauto.yaml")
    project.cli("build", "overauto.yaml", "-t", "fp16").assert_ok()
    record = _auto_record(project, "overauto", "fp16")
    assert record["passed"] and record["kept"] == [] and record["chosen_round"] == 0 and len(record["history"]) == 1
    assert record["tolerance"] == {"atol": 0.01, "atol_scale": "output", "rtol": 0.01}  # fp16's default, as validate's


def test_exclude_auto_keeps_the_clipped_int8_layer_and_is_deterministic(project, tmp_path):
    text = (CLIPPED % ", exclude: auto").replace("name: clip", "name: clipauto")
    project.manifest(text, name="clipauto.yaml")
    project.cli("build", "clipauto.yaml").assert_ok()
    record = _auto_record(project, "clipauto", "int8")
    assert record["passed"] and record["kept"][0] == "scaled", record
    assert [h["kept"] for h in record["history"]] == [0, 1, 3, 7][:len(record["history"])]  # 1, 2, 4 more a round
    shown = project.cli("inspect", "clipauto.yaml", "-t", "int8").assert_ok().stdout
    assert "exclude: auto met tolerance {'min_cosine': 0.99}" in shown and "round 1: 1 kept (+scaled)" in shown, shown
    again = ProjectDir(tmp_path / "again")  # another cache: the search runs again, from scratch
    shutil.copytree(TESTS / "models", again.root / "models")
    again.manifest(text, name="clipauto.yaml")
    again.cli("build", "clipauto.yaml").assert_ok()
    assert _int8_digest(again) == _int8_digest(project)  # (the exports differ: their stack traces hold paths)


def _int8_digest(project: ProjectDir) -> str:
    import tomllib

    nodes = tomllib.loads(project.lock("clipauto.yaml").read_text())["nodes"]
    return next(n["digest"] for name, n in nodes.items() if name.startswith("onnx.int8#"))


def test_exclude_auto_stops_at_its_bound_and_says_the_best_it_got(project):
    text = (CLIPPED % ", exclude: auto, auto_rounds: 1").replace("name: clip", "name: clipbound")
    project.manifest(text + "validation: {int8: {min_cosine: 0.99999999}}\n", name="clipbound.yaml")
    result = project.cli("build", "clipbound.yaml")
    result.assert_error(1, "validation against the source model failed", "first diverging nodes",
                        "exclude: auto met no tolerance {'min_cosine': 0.99999999} in 1 of 1 round(s); best: round 1, "
                        "1 layer(s) kept, cosine 0.9")
