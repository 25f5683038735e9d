"""buildsys-openvino: the stage contract every buildsys stage passes, plus the backend's own tests.

One real build of a tiny torch model (torch.export -> ONNX -> OpenVINO IR, and its fp16
variant) is shared by the module: each stage of it takes seconds. Run with
``python -m pytest plugins/examples/buildsys_openvino/tests`` once the plugin is installed
(``pip install -e plugins/examples/buildsys_openvino``); buildsys's own test run collects this
module too, through ``tests/contract/test_openvino_example.py``.
"""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

from buildsys.testing import TINY_TORCH_FILES, ProjectDir, StageContract, tiny_torch_manifest

TARGETS = {
    "ir": "{format: openvino}",
    "ir16": "{format: openvino, precision: fp16, pipeline: [torch.export, onnx.export, openvino.convert, openvino.fp16]}",
    "unbounded": "{format: ov, options: {openvino.convert: {bound_dims: false}}}",
}
MANIFEST = tiny_torch_manifest(TARGETS, name="ovtiny")


@pytest.fixture(scope="module")
def shared_build(tmp_path_factory):
    project = ProjectDir(tmp_path_factory.mktemp("openvino") / "project")
    path = project.manifest(MANIFEST, files=TINY_TORCH_FILES)
    result = project.cli("build", path.name, "-j", "2").assert_ok()
    return project, path, result


def record(project: ProjectDir, target: str) -> dict:
    return json.loads((project.target_dir("ovtiny", "1.0.0", target) / "artifact.json").read_text())


# -- the contract ----------------------------------------------------------------------------


class _Shared(StageContract):
    manifest, files = MANIFEST, TINY_TORCH_FILES

    @pytest.fixture
    def built(self, shared_build):
        return shared_build


class TestConvertContract(_Shared):
    stage, target = "openvino.convert", "ir"


class TestFp16Contract(_Shared):
    stage, target = "openvino.fp16", "ir16"


# -- the backend's own tests -----------------------------------------------------------------


def test_installed_as_its_own_distribution_through_the_entry_point():
    [ep] = [ep for ep in importlib.metadata.entry_points(group="buildsys") if ep.name == "openvino"]
    assert ep.value == "buildsys_openvino" and ep.dist.name == "buildsys-openvino"


def test_listed_with_its_contract_range(buildsys_project):
    out = buildsys_project.cli("plugins").assert_ok().stdout
    assert "buildsys_openvino  contract >=1.1,<2" in out
    stages = [line.split() for line in out.splitlines() if line.startswith(("  openvino.convert", "  openvino.fp16"))]
    assert [(s[0], "usable" in s) for s in stages] == [("openvino.convert", True), ("openvino.fp16", True)]


def test_every_target_validated_against_the_torch_model_by_the_openvino_runtime(shared_build):
    project, _, _ = shared_build
    for target, precision in (("ir", "fp32"), ("ir16", "fp16"), ("unbounded", "fp32")):
        rec = record(project, target)
        assert rec["kind"] == "openvino.ir" and rec["precision"] == precision and rec["hardware"] == "any"
        assert rec["validation"]["status"] == "passed" and rec["validation"]["runner"] == "openvino"
        assert rec["validation"]["samples"] >= 3  # the batch dim at min, opt and max
        assert all(o["passed"] for o in rec["validation"]["outputs"])
    fp32 = record(project, "ir")["validation"]["outputs"][0]
    assert fp32["max_abs"] < 1e-5, "inference must run in f32, not the CPU's bf16 default"


def test_fp16_stores_weights_at_half_the_size(shared_build):
    project, _, _ = shared_build
    sizes = {t: {f["name"]: f["size"] for f in record(project, t)["files"]} for t in ("ir", "ir16")}
    assert sizes["ir16"]["model.bin"] * 2 == sizes["ir"]["model.bin"]
    assert record(project, "ir16")["meta"]["weights_fp16"] and not record(project, "ir")["meta"]["weights_fp16"]


def test_dims_bounded_by_the_manifest_unless_asked_not_to(shared_build):
    project, _, _ = shared_build
    assert record(project, "ir")["meta"]["shapes"] == {"x": "[1..4,8]"}
    assert record(project, "unbounded")["meta"]["shapes"] == {"x": "[?,8]"}


def test_the_artifact_folder_loads_in_openvino_and_matches_torch(shared_build):
    """What a user does with the artifact: read the renamed .xml with model.bin beside it."""
    import openvino as ov
    import torch

    project, _, _ = shared_build
    folder = project.target_dir("ovtiny", "1.0.0", "ir")
    [xml] = folder.glob("ovtiny-1.0.0-openvino-fp32-ov*-any.xml")
    core = ov.Core()
    compiled = core.compile_model(core.read_model(xml, folder / "model.bin"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    namespace: dict = {}
    exec(TINY_TORCH_FILES["models/tiny.py"], namespace)
    with torch.no_grad():
        expected = namespace["build"]()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(compiled([x])[compiled.outputs[0]], expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError):  # batch 5 is outside the manifest's [1..4]
        compiled([np.zeros((5, 8), np.float32)])


def test_an_onnx_graph_openvino_cannot_read_fails_the_stage_naming_it(buildsys_project, tmp_path):
    """A broken input to the stage itself: the error names the stage and OpenVINO's reason."""
    from buildsys import InputArtifact, StageContext, StageFailed
    from buildsys_openvino.convert import ConvertOptions, run_convert

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not protobuf")
    (tmp_path / "out").mkdir()
    ctx = StageContext(out_dir=tmp_path / "out", stage="openvino.convert", node_id="n", targets=["t"],
                       hardware="any", precision="fp32", model=None, root=tmp_path)
    source = InputArtifact("onnx", "fp32", "any", tmp_path, {"model.onnx": bad}, {"primary": "model.onnx"})
    with pytest.raises(StageFailed, match="OpenVINO could not convert the ONNX graph"):
        run_convert(ctx, [source], ConvertOptions(bound_dims=False))
    assert list((tmp_path / "out").iterdir()) == []
