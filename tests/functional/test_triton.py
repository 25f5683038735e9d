"""Triton model repositories built from a tiny torch MLP, checked without a server.

One build (module fixture) makes every repository: ONNX and ORT-optimized graphs served natively
(``onnxruntime_onnx``), the same graph on a GPU with ONNX Runtime's TensorRT accelerator, a
TensorRT-RTX engine (``tensorrt_plan``), and a torch.export program, which Triton's PyTorch
backend cannot load, so the python backend wraps it. Each ``config.pbtxt`` is parsed with
Triton's own model-config protobuf (from ``tritonclient``) and checked field by field. Serving
them on a real tritonserver is ``tests/integration/test_triton_server.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from buildsys.testing import ProjectDir
from buildsys.testing.models import TINY_TORCH_FILES, tiny_torch_manifest

pytest.importorskip("torch")  # the torch/onnx/triton extras are installed in CI: never skips there
pytest.importorskip("onnx")
text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

Config = model_config_pb2.ModelConfig
Group = model_config_pb2.ModelInstanceGroup

TARGETS = {
    "onnx": "{format: onnx}",
    "ort": "{format: onnx.ort, options: {onnx.ort: {level: extended}}}",
    "native": "{format: triton, from: onnx}",
    "native-ort": "{format: triton, from: ort, options: {triton: {model_name: tiny_ort, instance_count: 2}}}",
    "gpu": "{format: triton, from: onnx, hardware: cuda, options: {triton: {accelerator: tensorrt}}}",
    "trt": "{format: tensorrt, hardware: [sm86], options: {tensorrt.plan: {optimization_level: 0}}}",
    "triton-trt": "{format: triton, from: trt}",
    "exported": "{format: triton}",
    "python": "{format: triton, from: onnx, options: {triton: {backend: python, max_queue_delay_microseconds: 100}}}",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectDir:
    pytest.importorskip("tensorrt_rtx")
    project = ProjectDir(tmp_path_factory.mktemp("triton") / "project")
    project.manifest(tiny_torch_manifest(TARGETS), files=TINY_TORCH_FILES)
    project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    return project


def repository(project: ProjectDir, target: str) -> tuple[dict, Path]:
    directory = project.target_dir("tiny", "1.0.0", target)
    return json.loads((directory / "artifact.json").read_text()), directory


def config(project: ProjectDir, target: str, model: str = "tiny"):
    _, directory = repository(project, target)
    return text_format.Parse((directory / model / "config.pbtxt").read_text(), Config())


def io(tensors) -> list[tuple]:
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors]


def test_onnx_is_served_by_onnxruntime_with_the_batch_dim_left_to_triton(project):
    cfg = config(project, "native")
    assert (cfg.name, cfg.platform, cfg.backend, cfg.max_batch_size) == ("tiny", "onnxruntime_onnx", "", 4)
    assert io(cfg.input) == [("x", "TYPE_FP32", [8])]
    assert io(cfg.output) == [("output", "TYPE_FP32", [4])]
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(Group.KIND_CPU, 1)]
    assert cfg.HasField("dynamic_batching") and cfg.dynamic_batching.max_queue_delay_microseconds == 0
    assert not cfg.optimization.execution_accelerators.gpu_execution_accelerator
    record, directory = repository(project, "native")
    assert sorted(f["name"] for f in record["files"]) == ["tiny/1/model.onnx", "tiny/config.pbtxt"]
    onnx_record, onnx_dir = repository(project, "onnx")
    graph = next(f for f in onnx_record["files"] if f["role"] == "primary")
    assert (directory / "tiny/1/model.onnx").read_bytes() == (onnx_dir / graph["name"]).read_bytes()
    assert record["kind"] == "triton" and record["hardware"] == "any"
    assert record["meta"]["platform"] == "onnxruntime_onnx" and record["meta"]["outputs_from"] == "read from the ONNX graph"
    assert record["signature"]["outputs"] == [{"name": "output", "dtype": "float32", "shape": [-1, 4]}]


def test_every_file_of_the_repository_is_checksummed_in_artifact_json(project):
    record, directory = repository(project, "python")
    listed = {f["name"]: f["sha256"] for f in record["files"]}
    on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"artifact.json", "provenance.json"}
    assert {"tiny/config.pbtxt", "tiny/1/model.py", "tiny/1/artifact/artifact.json"} <= set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name
    project.cli("verify", "manifest.yaml").assert_ok()


def test_an_ort_graph_is_served_natively_under_its_own_name_with_two_instances(project):
    cfg = config(project, "native-ort", model="tiny_ort")
    assert (cfg.name, cfg.platform, cfg.max_batch_size) == ("tiny_ort", "onnxruntime_onnx", 4)
    assert [(g.kind, g.count) for g in cfg.instance_group] == [(Group.KIND_CPU, 2)]


def test_a_gpu_target_gets_gpu_instances_and_the_tensorrt_accelerator(project):
    cfg = config(project, "gpu")
    assert [g.kind for g in cfg.instance_group] == [Group.KIND_GPU]
    [accelerator] = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and dict(accelerator.parameters) == {"precision_mode": "FP32"}
    record, _ = repository(project, "gpu")
    assert record["hardware"] == "cuda"  # a portable graph takes the target's hardware


def test_a_tensorrt_engine_is_served_as_tensorrt_plan_on_its_gpus(project):
    cfg = config(project, "triton-trt")
    assert (cfg.platform, cfg.max_batch_size) == ("tensorrt_plan", 4)
    assert io(cfg.input) == [("x", "TYPE_FP32", [8])]
    # no GPU here to run the engine: Triton's TensorRT backend completes the outputs from the plan
    assert list(cfg.output) == []
    assert [g.kind for g in cfg.instance_group] == [Group.KIND_GPU]
    record, directory = repository(project, "triton-trt")
    assert record["hardware"] == "cuda-sm86" and (directory / "tiny/1/model.plan").is_file()
    assert "cannot load it on this CPU" in record["meta"]["outputs_from"]


def test_a_torch_export_program_goes_to_the_python_backend_and_the_plan_says_why(project):
    cfg = config(project, "exported")
    assert (cfg.backend, cfg.platform, cfg.max_batch_size) == ("python", "", 4)
    assert io(cfg.output) == [("output", "TYPE_FP32", [4])]
    record, directory = repository(project, "exported")
    assert "TorchScript" in record["meta"]["backend_reason"] and "python backend" in record["meta"]["backend_reason"]
    assert record["meta"]["outputs_from"].startswith("probed with runner")
    wrapped = json.loads((directory / "tiny/1/artifact/artifact.json").read_text())
    assert wrapped["kind"] == "torch.exported" and wrapped["signature"]["outputs"][0]["name"] == "output"
    plan = json.loads(project.cli("plan", "manifest.yaml", "--format", "json").assert_ok().stdout)
    backends = {n["targets"][0]: n["options"]["backend"] for n in plan["nodes"] if n["stage"] == "triton"}
    assert backends == {"native": "onnxruntime_onnx", "native-ort": "onnxruntime_onnx", "gpu": "onnxruntime_onnx",
                        "triton-trt": "tensorrt_plan", "exported": "python", "python": "python"}
    # the text plan says it too: what the plan chose for an option left at auto
    text = project.cli("plan", "manifest.yaml", "-t", "exported", "-t", "native").assert_ok().stdout
    assert re.search(r"triton#\w+ \[triton fp32 any backend=python\] <- torch\.export#\w+\s+=> exported", text), text
    assert re.search(r"triton#\w+ \[triton fp32 any backend=onnxruntime_onnx\] <- onnx\.export#\w+", text), text


def test_the_python_backend_wraps_the_artifact_buildsys_load_opens(project):
    import numpy as np

    import buildsys

    cfg = config(project, "python")
    assert cfg.backend == "python" and cfg.dynamic_batching.max_queue_delay_microseconds == 100
    _, directory = repository(project, "python")
    session = buildsys.load(directory / "tiny/1/artifact")
    assert session.artifact["kind"] == "onnx" and [o.name for o in session.outputs] == ["output"]
    x = np.random.default_rng(0).random((3, 8), dtype=np.float32)
    reference = buildsys.load(project.target_dir("tiny", "1.0.0", "onnx")).run({"x": x})["output"]
    assert np.array_equal(session.run({"x": x})["output"], reference)


def test_a_repository_publishes_and_pulls_back_whole(project, tmp_path):
    url = f"file:{tmp_path / 'registry'}"
    project.cli("publish", "manifest.yaml", "--target", "python", "--to", url).assert_ok()
    project.cli("pull", "tiny", "1.0.0", "python", "--from", url, "--to", str(tmp_path / "pulled")).assert_ok()
    _, built = repository(project, "python")
    pulled = next((tmp_path / "pulled").rglob("config.pbtxt")).parent.parent
    names = {p.relative_to(pulled).as_posix() for p in pulled.rglob("*") if p.is_file()}
    assert {"tiny/config.pbtxt", "tiny/1/model.py", "tiny/1/artifact/artifact.json"} <= names
    for name in names - {"provenance.json"}:
        assert (pulled / name).read_bytes() == (built / name).read_bytes(), name


def test_repositories_are_validated_against_the_eager_model_and_load_like_any_artifact(project):
    import numpy as np

    import buildsys

    for target in ("native", "native-ort", "exported", "python"):
        record, _ = repository(project, target)
        assert record["validation"]["status"] == "passed", (target, record["validation"])
        assert record["validation"]["runner"] == "triton-repository"
    for target in ("gpu", "triton-trt"):  # CUDA-tagged: not run on this CPU, and why
        record, _ = repository(project, target)
        assert record["validation"]["status"] == "not run" and "which this host lacks" in record["validation"]["reason"]
    x = np.random.default_rng(1).random((2, 8), dtype=np.float32)
    reference = buildsys.load(project.target_dir("tiny", "1.0.0", "onnx")).run({"x": x})["output"]
    for target in ("native", "python"):
        session = buildsys.load(project.target_dir("tiny", "1.0.0", target))
        np.testing.assert_allclose(session.run({"x": x})["output"], reference, rtol=1e-6, atol=1e-7)


# -- bad input: each a plan-time error with the manifest line, nothing built ---------------------


@pytest.mark.parametrize("name", ["a/b", "", ".hidden", "..", "with space", "x" * 129])
def test_a_model_name_triton_would_refuse_is_refused_at_plan_time(buildsys_project, tiny_manifest, name):
    path = tiny_manifest({"repo": "{format: triton, options: {triton: {model_name: '%s'}}}" % name})
    result = buildsys_project.cli("build", path.name)
    result.assert_error(3, "options of stage 'triton': model_name", "cannot name a Triton model", f"{path.name}:")
    assert not buildsys_project.target_dir("tiny", "1.0.0", "repo").exists()


def test_a_native_backend_for_a_kind_it_does_not_serve_is_refused(buildsys_project, tiny_manifest):
    path = tiny_manifest({"repo": "{format: triton, options: {triton: {backend: tensorrt_plan}}}"})
    buildsys_project.cli("build", path.name).assert_error(
        3, "backend tensorrt_plan does not serve torch.exported artifacts; use python or auto")


def test_a_repository_for_hardware_its_engine_was_not_built_for_is_refused(buildsys_project, tiny_manifest):
    path = tiny_manifest({"trt": "{format: tensorrt, hardware: [sm86]}",
                          "repo": "{format: triton, from: trt, hardware: cpu}"})
    buildsys_project.cli("build", path.name).assert_error(
        3, "target 'repo' asks for cpu, but stage 'triton' packages an input built for cuda-sm86")
