"""The PyTorch path on tiny models: export, validation, AOTI, and every bad input."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from buildsys.testing import StageContract

torch = pytest.importorskip("torch")  # the torch extra is installed in CI: this skip never hides a feature there

MODELS = Path(__file__).resolve().parents[1] / "models"

MANIFEST = """
schema: 1
name: tiny
version: 1.0.0
model:
  framework: torch
  entrypoint: models/tiny.py:{fn}
  inputs: [{{name: x, dtype: float32, shape: [batch, 8]}}]
  dims: {{batch: {{min: 1, opt: 4, max: 8}}}}
  {extra}
targets:
  exported: {{format: exported}}
  {targets}
"""


def tiny(project, fn="build", extra="", targets=""):
    shutil.copytree(MODELS, project.root / "models", dirs_exist_ok=True)
    return project.manifest(MANIFEST.format(fn=fn, extra=extra, targets=targets))


def record(project, target):
    return json.loads((project.target_dir("tiny", "1.0.0", target) / "artifact.json").read_text())


class TestExportContract(StageContract):
    stage, target = "torch.export", "exported"
    manifest = MANIFEST.format(fn="build", extra="", targets="")

    @pytest.fixture
    def built(self, buildsys_project):
        path = tiny(buildsys_project)
        buildsys_project.cli("build", path.name, "-t", self.target).assert_ok()
        return buildsys_project, path, None


def test_export_validates_against_eager(buildsys_project):
    tiny(buildsys_project)
    result = buildsys_project.cli("build", "manifest.yaml").assert_ok()
    result.assert_nodes(built=["torch.export", "torch.reference", "validate"])
    rec = record(buildsys_project, "exported")
    assert rec["validation"]["status"] == "passed" and rec["validation"]["samples"] == 3
    assert rec["validation"]["outputs"][0]["max_abs"] < 1e-5
    assert rec["meta"]["input_names"] == ["x"] and rec["meta"]["output_names"] == ["output"]
    assert rec["meta"]["dynamic_dims"] == {"x": {"0": "batch"}}
    assert rec["files"][0]["name"] == "tiny-1.0.0-exported-fp32-any.pt2"


def test_manifest_samples_are_used(buildsys_project):
    tiny(buildsys_project, extra="samples: models/tiny.py:samples")
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    assert record(buildsys_project, "exported")["validation"]["samples"] == 2


def test_weights_load_and_mismatch(buildsys_project, tmp_path):
    tiny(buildsys_project)
    from safetensors.torch import save_file

    import sys
    sys.path.insert(0, str(MODELS))
    try:
        import tiny as tiny_models
    finally:
        sys.path.pop(0)
    good = {k: torch.full_like(v, 0.01) for k, v in tiny_models.build().state_dict().items()}
    save_file(good, str(buildsys_project.root / "good.safetensors"))
    tiny(buildsys_project, extra="weights: good.safetensors")
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    before = record(buildsys_project, "exported")
    bad = dict(good)
    bad["fc1.weight"] = torch.zeros(3, 3)
    del bad["fc2.bias"]
    save_file(bad, str(buildsys_project.root / "bad.safetensors"))
    tiny(buildsys_project, extra="weights: bad.safetensors")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "do not match the module", "missing 1: fc2.bias", "fc1.weight: file (3, 3) != model (16, 8)")
    assert record(buildsys_project, "exported") == before  # the failed rebuild replaced nothing


@pytest.mark.parametrize("fn,fragments", [
    ("raises", ["raised ValueError: the config file is missing", "tiny.py:"]),
    ("wrong_type", ["returned dict, expected a torch.nn.Module"]),
])
def test_bad_entrypoints(buildsys_project, fn, fragments):
    tiny(buildsys_project, fn=fn)
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "[targets: exported]", *fragments)
    assert not buildsys_project.target_dir("tiny", "1.0.0", "exported").exists()


@pytest.mark.parametrize("fn,fragments", [
    ("nothere", ["tiny.py has no function 'nothere'", "manifest.yaml:"]),
    ("biuld", ["tiny.py has no function 'biuld'", "did you mean 'build'?"]),
])
def test_misspelled_entrypoint_fails_at_plan_time(buildsys_project, fn, fragments):
    """Checked from the file's syntax tree: plan imports nothing, yet the typo is caught before a build."""
    tiny(buildsys_project, fn=fn)
    buildsys_project.cli("plan", "manifest.yaml").assert_error(2, "model.entrypoint", *fragments)
    buildsys_project.cli("build", "manifest.yaml").assert_error(2, *fragments)
    assert not (buildsys_project.root / "artifacts").exists() or not any((buildsys_project.root / "artifacts").rglob("artifact.json"))


def test_inputs_the_model_rejects_point_at_the_manifest_and_the_model_line(buildsys_project):
    tiny(buildsys_project, fn="wide")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "the model rejects its inputs: RuntimeError: mat1 and mat2 shapes cannot be multiplied",
                        "called with x: float32 [4, 8]", "the manifest declares x: float32 [batch, 8] (batch 1..8)",
                        "tiny.py:", "make model.inputs")
    assert "return self.fc(x)" in result.stderr and "Traceback" not in result.stderr


def test_random_weights_get_a_hint_not_just_a_cosine(buildsys_project):
    tiny(buildsys_project, fn="unseeded")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "validation against the source model failed", "unrelated to the reference",
                        "torch.manual_seed(0)", "'weights:'")
    assert not buildsys_project.target_dir("tiny", "1.0.0", "exported").exists()


def test_a_samples_entrypoint_that_raises_is_named_with_its_line(buildsys_project):
    tiny(buildsys_project, extra="samples: models/tiny.py:bad_samples")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "samples entrypoint 'models/tiny.py:bad_samples' raised IndexError", "tiny.py:")
    assert "rows[i]" in result.stderr  # the user's line, not ours
    assert "Traceback" not in result.stderr


def test_data_dependent_branch_names_the_line(buildsys_project):
    tiny(buildsys_project, fn="data_dependent")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "torch.export failed", "tiny.py:", "graph break", "ways out")
    assert "if x.sum() > 0" in result.stderr
    doctor = buildsys_project.cli("doctor", "manifest.yaml")
    assert doctor.exit_code == 1 and "torch.export failed" in doctor.stdout and "if x.sum() > 0" in doctor.stdout
    assert "buildsys doctor" not in doctor.stdout, "doctor does not suggest running itself"
    noise = ("GraphModule", "def forward(", "V1202", "torch/_dynamo", "[0/0]")
    assert not [n for n in noise if n in doctor.stdout + doctor.stderr], "torch's own logs stay out of the answer"
    envelope = json.loads(buildsys_project.cli("doctor", "manifest.yaml", "--json").stdout)
    assert (envelope["command"], envelope["ok"], envelope["exit_code"]) == ("doctor", False, 1)
    assert envelope["result"]["export"]["ok"] is False and "if x.sum() > 0" in envelope["result"]["export"]["error"]


def test_dim_range_the_model_cannot_honour(buildsys_project):
    tiny(buildsys_project, fn="fixed_batch")
    result = buildsys_project.cli("build", "manifest.yaml")
    result.assert_error(1, "torch.export failed", "[targets: exported]", "Constraints violated (batch)",
                        "specialized it to be a constant (4)")
    # draft_export's guard in the manifest's terms, at the model line that added it
    assert "draft_export: GUARD_ADDED: Eq(8*batch, 32) at " in result.stderr and "x.reshape(4, 8)" in result.stderr
    assert "{'expr'" not in result.stderr and "TORCH_LOGS" not in result.stderr and "Suggested fixes" not in result.stderr


def test_validation_failure_lists_every_mismatch(buildsys_project):
    tiny(buildsys_project, fn="noisy")
    result = buildsys_project.cli("build", "manifest.yaml", "-k")
    assert result.exit_code == 1
    # the round-trip check or validation catches the noise; either way nothing is written
    assert "disagrees with eager" in result.stderr or "validation against the source model failed" in result.stderr
    assert not buildsys_project.target_dir("tiny", "1.0.0", "exported").exists()


def test_doctor_on_a_good_model(buildsys_project):
    tiny(buildsys_project)
    out = buildsys_project.cli("doctor", "manifest.yaml").assert_ok().stdout
    assert "MLP" in out and "export     ok" in out and "no graph breaks" in out
    report = json.loads(buildsys_project.cli("doctor", "manifest.yaml", "--json").assert_ok().stdout)["result"]
    assert report["export"]["ok"] and report["example"] == {"x": [4, 8]} and report["parameters"] == 8 * 16 + 16 + 16 * 4 + 4


@pytest.mark.skipif(shutil.which("g++") is None, reason="AOTInductor on CPU needs g++ (installed on CI machines)")
def test_aoti_cpu_tagged_and_validated(buildsys_project):
    tiny(buildsys_project, targets="aoti: {format: aoti, hardware: cpu}\n"
         "  static: {format: aoti, hardware: cpu, options: {torch.aoti: {dynamic: false}}}")
    result = buildsys_project.cli("build", "manifest.yaml", "-t", "aoti", "-t", "static", "-j", "2", "-k")
    # A package specialised to the example batch (4) silently computes garbage at batch 8:
    # AOTI does not check input shapes. Validation is what catches it.
    result.assert_error(1, "[targets: static]", "validation against the source model failed",
                        "sample 2 (input shapes [[8, 8]]) output 'output'")
    assert not buildsys_project.target_dir("tiny", "1.0.0", "static").exists()
    rec = record(buildsys_project, "aoti")
    assert rec["hardware"].startswith("cpu-x86_64") and rec["kind"] == "torch.aoti"
    assert rec["validation"]["status"] == "passed" and rec["validation"]["runner"] == "torch.aoti"
    assert rec["deterministic"] is False and rec["meta"]["dynamic"] is True
    # the wrapper uses the process's shared libstdc++, never a private static copy (issue 22:
    # such a copy crashed every package load on the GPU machine)
    assert rec["meta"]["links"] == [":libstdc++.so.6"] and rec["meta"]["compiler"]
    package = buildsys_project.target_dir("tiny", "1.0.0", "aoti") / rec["files"][0]["name"]
    with zipfile.ZipFile(package) as z:
        [wrapper] = [n for n in z.namelist() if n.endswith(".so")]
        (buildsys_project.root / "wrapper.so").write_bytes(z.read(wrapper))
    needed = subprocess.run(["readelf", "-d", str(buildsys_project.root / "wrapper.so")], capture_output=True,
                            text=True, check=True).stdout
    assert "[libstdc++.so.6]" in needed


def test_aoti_for_a_gpu_this_host_lacks_is_refused(buildsys_project):
    tiny(buildsys_project, targets="gpu: {format: aoti, hardware: h100}")
    result = buildsys_project.cli("build", "manifest.yaml", "-t", "gpu")
    result.assert_error(3, "needs cuda-sm90, the host has none", "'torch.aoti' is not ahead-of-time capable")


# -- torch.fp16 / torch.bf16 ---------------------------------------------------------------------

CASTS = """
schema: 1
name: casts
version: 1.0.0
model:
  framework: torch
  entrypoint: models/tiny.py:casts
  inputs:
    - {name: x, dtype: float32, shape: [batch, 8]}
    - {name: ids, dtype: int64, shape: [batch, 3], range: [0, 16]}
  dims: {batch: {min: 1, opt: 4, max: 8}}
targets:
  fp32: {format: exported}
  fp16: {format: exported, precision: fp16}
  bf16: {format: exported, precision: bf16}
  aoti-fp16: {format: aoti, hardware: cpu, precision: fp16}
  onnx-fp16: {format: onnx, precision: fp16}
"""


def test_fp16_and_bf16_programs_compute_in_half_and_keep_the_signature(buildsys_project):
    shutil.copytree(MODELS, buildsys_project.root / "models", dirs_exist_ok=True)
    buildsys_project.manifest(CASTS)
    plan = buildsys_project.cli("plan", "manifest.yaml").assert_ok().stdout
    # ONNX fp16 still lowers the ONNX graph (modelopt), not the torch program
    assert re.search(r"onnx\.fp16#\w+ \[onnx fp16 any\] <- onnx\.export#\w+", plan), plan
    result = buildsys_project.cli("build", "manifest.yaml", "-t", "fp32", "-t", "fp16", "-t", "bf16",
                                  "-t", "aoti-fp16", "-j", "2").assert_ok()
    result.assert_nodes(built=["torch.export", "torch.fp16", "torch.bf16", "torch.aoti", "torch.reference",
                               "validate", "validate", "validate", "validate"])
    def casts_record(target):
        return json.loads((buildsys_project.target_dir("casts", "1.0.0", target) / "artifact.json").read_text())

    fp32 = casts_record("fp32")
    for target, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("aoti-fp16", None)):
        rec = casts_record(target)
        assert rec["precision"] == target.split("-")[-1] and rec["validation"]["status"] == "passed"
        # the manifest's dtypes at the edges: float32 scores, int64 count, as the fp32 program
        assert rec["signature"]["outputs"] == fp32["signature"]["outputs"]
        assert [o["dtype"] for o in rec["signature"]["outputs"]] == ["float32", "int64"]
        if dtype is None:
            continue
        lowered = rec["meta"]["lowered"]
        assert lowered["tensors"] == 4 and lowered["nodes"] >= 2  # 3 weights + the buffer; the cast and the factory
        program = torch.export.load(str(buildsys_project.target_dir("casts", "1.0.0", target) / rec["files"][0]["name"]))
        assert {t.dtype for t in program.state_dict.values() if t.is_floating_point()} == {dtype}
        # float32 in, float32 out, half inside
        out = program.module()(torch.randn(2, 8), torch.randint(0, 16, (2, 3)))
        assert out[0].dtype == torch.float32 and out[1].dtype == torch.int64
        assert any(n.kwargs.get("dtype") == dtype for n in program.graph.nodes if n.op == "call_function")


def test_a_static_fp16_aoti_package_compiles_the_lowered_program(buildsys_project):
    # dynamic: false re-exports before compiling: from the lowered program, not the fp32 model
    shutil.copytree(MODELS, buildsys_project.root / "models", dirs_exist_ok=True)
    static = (CASTS.replace("[batch, 8]", "[4, 8]").replace("[batch, 3]", "[4, 3]")
              .replace("  dims: {batch: {min: 1, opt: 4, max: 8}}\n", ""))
    buildsys_project.manifest(static.split("targets:")[0] + "targets:\n"
                              "  static: {format: aoti, hardware: cpu, precision: fp16, options: {torch.aoti: {dynamic: false}}}\n")
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    rec = json.loads((buildsys_project.target_dir("casts", "1.0.0", "static") / "artifact.json").read_text())
    assert rec["precision"] == "fp16" and rec["meta"]["dynamic"] is False
    assert rec["validation"]["status"] == "passed"
    # fp16 error, not fp32's: the package computes in half precision
    assert rec["validation"]["outputs"][0]["max_abs"] > 1e-6
