"""The TensorRT builder for real, with TensorRT-RTX on this GPU-less machine.

Two halves. The builder module is called directly on tiny ONNX graphs made with onnx.helper
(``tests/models/trt_graphs.py``): fp32, fp16 and int8 Q/DQ engines and the layer precisions
TensorRT chose, every parser error, Q/DQ forms TensorRT rejects, precision the graph lacks,
profiles, the timing cache. Then the CLI on a tiny torch CNN: the engine's name and
artifact.json, plan-time refusals, failures that leave nothing behind, ``--locked`` by action
key, and the runner saying why it cannot run here. Builds use optimization level 0: a build
takes a fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from buildsys import InputArtifact, StageFailed
from buildsys.testing import ProjectDir

trt = pytest.importorskip("tensorrt_rtx")  # the tensorrt extra is installed in CI: never skips there
pytest.importorskip("onnx")
pytest.importorskip("torch")

from buildsys_tensorrt import builder, graph, timing  # noqa: E402
from buildsys_tensorrt.options import PlanOptions  # noqa: E402
from buildsys_tensorrt.runner import EngineIncompatible, load_runner  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "models"))
import trt_graphs  # noqa: E402


def build(path: Path, precision: str = "fp32", sms=(86,), model=None, session=None, **options) -> builder.Engine:
    """What the stage does, minus the context: check the graph, then build with TensorRT-RTX."""
    facts = graph.inspect(path)
    graph.check_precision(facts, precision)
    graph.check_qdq(facts)
    return builder.build_engine(builder.Request(
        onnx=path, trt=trt, flavour="tensorrt-rtx", sms=tuple(sms),
        options=PlanOptions.model_validate(dict({"optimization_level": 0}, **options)),
        model=model or trt_graphs.model_block(), timing=session, facts=facts))


def counts(engine: builder.Engine) -> Counter:
    return Counter(layer["precision"] for layer in engine.layers)


# -- precision comes from the graph -----------------------------------------------------------


def test_fp32_engine_with_its_layer_report(tmp_path):
    engine = build(trt_graphs.fp32(tmp_path / "fp32.onnx"))
    assert engine.plan[:4] == b"vtrt" and len(engine.plan) > 1000
    assert engine.inputs == {"x": (-1, 8)} and engine.outputs == ["y"]
    assert counts(engine).get("fp32", 0) >= 1 and "fp16" not in counts(engine) and "int8" not in counts(engine)
    assert any(set(layer["onnx"]) >= {"mm", "relu"} for layer in engine.layers), engine.layers


def test_fp16_graph_gets_fp16_kernels(tmp_path):
    engine = build(trt_graphs.fp16(tmp_path / "fp16.onnx"), precision="fp16")
    assert counts(engine).get("fp16", 0) >= 1, engine.layers
    fused = next(layer for layer in engine.layers if "mm" in layer["onnx"])
    assert fused["precision"] == "fp16" and fused["inputs"] == ["Half"]


def test_int8_qdq_graph_gets_an_int8_gemm(tmp_path):
    engine = build(trt_graphs.int8(tmp_path / "int8.onnx"), precision="int8", sms=(86, 89))
    gemm = next(layer for layer in engine.layers if "mm" in layer["onnx"])
    assert gemm["precision"] == "int8" and gemm["inputs"] == ["Int8"], engine.layers


@pytest.mark.parametrize("make, precision, stage", [(trt_graphs.fp32, "int8", "onnx.int8"),
                                                    (trt_graphs.fp32, "fp16", "onnx.fp16"),
                                                    (trt_graphs.int8, "bf16", "onnx.bf16")])
def test_a_precision_the_graph_does_not_carry_is_refused(tmp_path, make, precision, stage):
    with pytest.raises(StageFailed) as info:
        build(make(tmp_path / "g.onnx"), precision=precision)
    assert f"asks for a {precision} engine" in str(info.value)
    assert f"stage '{stage}'" in info.value.hint


# -- graphs TensorRT rejects ------------------------------------------------------------------


def test_every_unsupported_node_is_named_with_its_operator(tmp_path):
    with pytest.raises(builder.ParseError) as info:
        build(trt_graphs.unsupported(tmp_path / "bad.onnx"))
    text = str(info.value)
    assert "node 'fancy' (FancyOp)" in text and "node 'cumprod' (CumProd)" in text
    assert "mm" not in text.replace("parser", "")  # the supported MatMul is not blamed


def test_asymmetric_qdq_is_refused_per_node_before_parsing(tmp_path):
    path = trt_graphs.asymmetric(tmp_path / "asym.onnx")
    with pytest.raises(StageFailed) as info:
        build(path, precision="int8")
    text = str(info.value)
    assert "QuantizeLinear 'q_x' quantizes to uint8" in text and "DequantizeLinear 'dq_x' has a non-zero" in text
    assert "symmetric int8" in info.value.hint


def test_the_parser_itself_names_the_rejected_qdq_node(tmp_path):
    """Without the pre-check, TensorRT's own error still reaches the user with node and operator."""
    path = trt_graphs.asymmetric(tmp_path / "asym.onnx")
    request = builder.Request(onnx=path, trt=trt, flavour="tensorrt-rtx", sms=(86,), options=PlanOptions(),
                              model=trt_graphs.model_block())
    with pytest.raises(builder.ParseError, match=r"node 'q_x' \(QuantizeLinear\): .*zero point"):
        builder.build_engine(request)


def test_an_unsupported_compute_capability_is_refused_before_building(tmp_path):
    with pytest.raises(StageFailed, match="cannot build for sm90: it builds for sm75, sm80, sm86"):
        build(trt_graphs.fp32(tmp_path / "g.onnx"), sms=(86, 90))


def test_a_failed_build_reports_tensorrts_reason(tmp_path):
    with pytest.raises(StageFailed, match="could not build the engine: .*workspace") as info:
        build(trt_graphs.fp32(tmp_path / "g.onnx"), memory_pools={"workspace": 1e-6})
    assert "larger memory_pools" in info.value.hint


def test_a_setting_tensorrt_refuses_is_an_error_not_ignored(tmp_path):
    with pytest.raises(StageFailed, match="refused the builder configuration: .*setMemoryPoolLimit"):
        build(trt_graphs.fp32(tmp_path / "g.onnx"), memory_pools={"tactic_dram": 1e-6})


# -- profiles -----------------------------------------------------------------------------------


def test_one_profile_per_bucket(tmp_path):
    engine = build(trt_graphs.fp32(tmp_path / "g.onnx"), model=trt_graphs.model_block(buckets=["1-2", "3-16"]))
    assert [p.shapes["x"] for p in engine.profiles] == [((1, 8), (2, 8), (2, 8)), ((3, 8), (16, 8), (16, 8))]


def test_a_dynamic_input_without_a_profile_is_refused(tmp_path):
    model = trt_graphs.model_block(inputs=(("other", ["batch", 8]),))
    with pytest.raises(StageFailed, match="input 'x' \\[\\?, 8\\] is dynamic, and the manifest declares no input 'x'"):
        build(trt_graphs.fp32(tmp_path / "g.onnx"), model=model)


def test_a_profile_outside_the_manifest_dims_is_refused(tmp_path):
    profile = [{"x": {"min": [1, 8], "opt": [2, 8], "max": [64, 8]}}]
    with pytest.raises(StageFailed, match="input 'x' axis 0: 1..64 is outside dim 'batch' \\(1..4\\)"):
        build(trt_graphs.fp32(tmp_path / "g.onnx"), profiles=profile)


def test_a_static_graph_needs_no_profile(tmp_path):
    engine = build(trt_graphs.fp32(tmp_path / "g.onnx", x_shape=(2, 8)))
    assert engine.inputs == {"x": (2, 8)} and len(engine.plan) > 1000


# -- the timing cache ----------------------------------------------------------------------------


def session_at(path: Path) -> timing.Session:
    @contextlib.contextmanager
    def open_path():
        yield path

    return timing.Session(open_path)


def test_timing_cache_is_kept_and_reused(tmp_path):
    cache = tmp_path / "kept.cache"
    first = build(trt_graphs.fp32(tmp_path / "g.onnx"), session=session_at(cache))
    assert first.timing["loaded_bytes"] == 0 and first.timing["saved_bytes"] > 0
    assert cache.read_bytes().startswith(timing.MAGIC)
    second = build(tmp_path / "g.onnx", session=session_at(cache))
    assert second.timing["loaded_bytes"] == first.timing["saved_bytes"]


def test_a_corrupt_timing_cache_fails_before_building_and_is_left_alone(tmp_path):
    cache = tmp_path / "kept.cache"
    build(trt_graphs.fp32(tmp_path / "g.onnx"), session=session_at(cache))
    damaged = cache.read_bytes()[:-10]
    cache.write_bytes(damaged)
    with pytest.raises(timing.TimingCacheError, match="is corrupt: its sha256 does not match"):
        build(tmp_path / "g.onnx", session=session_at(cache))
    assert cache.read_bytes() == damaged


# ==============================================================================================
# The CLI on a tiny torch model

MANIFEST = """
schema: 1
name: cnn
version: 1.0.0
model:
  framework: torch
  entrypoint: models/onnx_cases.py:build
  inputs: [{name: images, dtype: float32, shape: [batch, 3, 8, 8]}]
  dims: {batch: {buckets: [1-2, 3-8]}}
targets:
  trt: {format: tensorrt, hardware: [sm86, sm89], options: {tensorrt.plan: {optimization_level: 0}}}
"""
ENGINE = "cnn-1.0.0-tensorrt-fp32-trtrtx1.7-cuda_sm86.sm89.plan"


def variant(project: ProjectDir, name: str, target: str) -> str:
    """The same model with another target, in its own manifest (the upstream nodes are cached)."""
    text = MANIFEST.split("targets:")[0] + "targets:\n  " + target + "\n"
    project.manifest(text, name=name)
    return name


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> ProjectDir:
    project = ProjectDir(tmp_path_factory.mktemp("trt") / "project")
    shutil.copytree(TESTS / "models", project.root / "models")
    project.manifest(MANIFEST)
    project.cli("build", "manifest.yaml").assert_ok()
    return project


def record(project: ProjectDir, target: str = "trt") -> dict:
    return json.loads((project.target_dir("cnn", "1.0.0", target) / "artifact.json").read_text())


def test_engine_file_name_and_artifact_json(cnn):
    rec = record(cnn)
    assert [f["name"] for f in rec["files"]] == [ENGINE]
    assert (rec["kind"], rec["format"], rec["hardware"], rec["deterministic"]) == \
        ("tensorrt.plan", "tensorrt", "cuda-sm86.sm89", False)
    meta = rec["meta"]
    assert meta["flavour"] == "tensorrt-rtx" and meta["flavour_version"] == trt.__version__
    assert meta["compute_capabilities"] == [86, 89]
    assert [p["dims"]["batch"] for p in meta["profiles"]] == [[1, 2, 2], [3, 8, 8]]
    assert meta["profiles"][1]["inputs"]["images"] == {"min": [3, 3, 8, 8], "opt": [8, 3, 8, 8], "max": [8, 3, 8, 8]}
    assert meta["layers"]["count"] == len(meta["layers"]["per_layer"]) > 0
    modules = {m for layer in meta["layers"]["per_layer"] for m in layer["modules"]}
    assert {"conv", "head"} <= modules, meta["layers"]["per_layer"]  # SmallCNN's own names, via the ONNX metadata
    conv = next(layer for layer in meta["layers"]["per_layer"] if "conv" in layer["modules"])
    assert conv["onnx"] and conv["precision"] == "fp32"
    assert meta["precision"]["graph"]["carries"] == ["fp32"] and meta["output_names"] == ["logits", "features"]
    assert rec["validation"] == {"status": "not run", "reason": "it runs on cuda-sm86.sm89, which this host lacks"}


def test_timing_cache_is_kept_in_the_store_per_flavour_version_and_hardware(cnn):
    kept = cnn.cache / "persistent" / timing.NAMESPACE / f"tensorrt-rtx-{trt.__version__}-cuda-sm86.sm89.cache"
    assert timing.read(kept) is not None and kept.stat().st_size > len(timing.MAGIC)
    assert record(cnn)["meta"]["timing_cache"]["file"] == kept.name


def test_locked_rebuild_compares_the_engine_by_action_key(cnn):
    before = tomllib.loads(cnn.lock().read_text())
    node = before["targets"]["trt"]["node"]
    assert before["nodes"][node]["stage"] == "tensorrt.plan" and before["nodes"][node]["deterministic"] is False
    key = before["nodes"][node]["action_key"]
    (cnn.cache / "ac" / key[:2] / f"{key}.json").unlink()  # forget the engine: it must be built again
    again = cnn.cli("build", "manifest.yaml", "--locked").assert_ok()  # passes even if the bytes differ
    assert [n.split("#")[0] for n in again.nodes("built")] == ["tensorrt.plan"]
    after = tomllib.loads(cnn.lock().read_text())
    assert after["nodes"][node]["action_key"] == key


def test_hardware_the_flavour_cannot_serve_is_refused_at_plan_time(cnn):
    name = variant(cnn, "h100.yaml", "h100: {format: tensorrt, hardware: h100}")
    result = cnn.cli("plan", name)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert "refused    target 'h100'" in result.stdout and "TensorRT-RTX cannot build for sm90" in result.stdout
    assert "enterprise TensorRT (flavour: tensorrt" in result.stdout
    cnn.cli("build", name).assert_error(3, "TensorRT-RTX cannot build for sm90")


def test_profile_with_min_above_max_is_refused_at_plan_time(cnn):
    name = variant(cnn, "minmax.yaml", "bad: {format: tensorrt, hardware: sm86, options: {tensorrt.plan: "
                                       "{profiles: [{images: {min: [8,3,8,8], opt: [2,3,8,8], max: [4,3,8,8]}}]}}}")
    cnn.cli("build", name).assert_error(3, "axis 0 needs 0 <= min <= opt <= max, got min=8 opt=2 max=4")
    assert not cnn.target_dir("cnn", "1.0.0", "bad").exists()


def test_profile_outside_the_manifest_dims_fails_the_node_and_writes_nothing(cnn):
    name = variant(cnn, "outside.yaml", "wide: {format: tensorrt, hardware: sm86, options: {tensorrt.plan: "
                                        "{optimization_level: 0, profiles: [{images: {min: [1,3,8,8], opt: [8,3,8,8], "
                                        "max: [64,3,8,8]}}]}}}")
    result = cnn.cli("build", name)
    result.assert_error(1, "input 'images' axis 0: 1..64 is outside dim 'batch' (1..8)")
    assert not cnn.target_dir("cnn", "1.0.0", "wide").exists()


def test_corrupt_kept_timing_cache_fails_the_node_clearly(cnn):
    name = variant(cnn, "corrupt.yaml", "sm80: {format: tensorrt, hardware: sm80, options: {tensorrt.plan: "
                                        "{optimization_level: 0}}}")
    kept = cnn.cache / "persistent" / timing.NAMESPACE / f"tensorrt-rtx-{trt.__version__}-cuda-sm80.cache"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"not a timing cache")
    result = cnn.cli("build", name)
    result.assert_error(1, f"the timing cache {kept} is corrupt", "delete that file")
    assert kept.read_bytes() == b"not a timing cache"
    assert not cnn.target_dir("cnn", "1.0.0", "sm80").exists()


def test_runner_says_why_the_engine_cannot_run_here(cnn):
    directory = cnn.target_dir("cnn", "1.0.0", "trt")
    rec = record(cnn)
    artifact = InputArtifact(kind=rec["kind"], precision=rec["precision"], hardware=rec["hardware"],
                             directory=directory, files={ENGINE: directory / ENGINE}, meta=rec["meta"])
    with pytest.raises(EngineIncompatible) as info:
        load_runner(artifact, "cuda")
    assert str(info.value).startswith(f"cannot run the engine {ENGINE} here: there is no CUDA GPU here (torch ")
    assert str(info.value).endswith("it runs on sm86, sm89")
