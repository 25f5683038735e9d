"""The Python API: ``buildsys.build`` and ``buildsys.load`` on a tiny two-input torch model,
and every way a load or a run is refused (tampered, other hardware, bad inputs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import buildsys
from buildsys.testing import ProjectDir

torch = pytest.importorskip("torch")  # the torch extra is installed in CI: this skip never hides a feature there
np = pytest.importorskip("numpy")

MODEL = '''
import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.gate = nn.Linear(8, 4)

    def forward(self, x, mask):
        return {"scores": self.fc(x) * torch.sigmoid(self.gate(mask)), "pooled": x.mean(dim=1)}


def build():
    torch.manual_seed(0)
    return Gated()
'''

MANIFEST = """
schema: 1
name: gated
version: 1.0.0
model:
  framework: torch
  entrypoint: model.py:build
  inputs:
    - {name: x, dtype: float32, shape: [batch, 8]}
    - {name: mask, dtype: float32, shape: [batch, 8]}
  dims: {batch: {min: 1, opt: 4, max: 8}}
targets:
  exported: {format: exported}
  onnx:     {format: onnx}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build through the API for the module: (project, its BuildReport)."""
    project = ProjectDir(tmp_path_factory.mktemp("api") / "project")
    project.root.mkdir()
    project.manifest(MANIFEST, files={"model.py": MODEL})
    with pytest.MonkeyPatch.context() as mp:
        for key, value in project.env.items():
            mp.setenv(key, value)
        report = buildsys.build(project.root / "manifest.yaml")
        again = buildsys.build(project.root / "manifest.yaml", targets=["onnx"])
    return project, report, again


@pytest.fixture
def env(built, monkeypatch):
    project = built[0]
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    return project


def eager(x, mask):
    import importlib.util

    spec = importlib.util.spec_from_loader("gated_model", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(MODEL, module.__dict__)
    out = module.build()(torch.from_numpy(x), torch.from_numpy(mask))
    return {k: v.detach().numpy() for k, v in out.items()}


def test_build_reports_each_target_then_all_cached(built):
    project, report, again = built
    assert report.ok and set(report.targets) == {"exported", "onnx"}
    assert {t.status for t in report.targets.values()} == {"built"}
    assert report["onnx"].directory == project.target_dir("gated", "1.0.0", "onnx")
    assert report["onnx"].artifact["kind"] == "onnx" and report.lock_changed
    assert list(again.targets) == ["onnx"] and again["onnx"].status == "cached" and not again.lock_changed


def test_artifact_records_output_names_dtypes_and_shapes(built):
    outputs = built[1]["exported"].artifact["signature"]["outputs"]
    assert outputs == [{"name": "scores", "dtype": "float32", "shape": ["batch", 4]},
                       {"name": "pooled", "dtype": "float32", "shape": ["batch"]}]


@pytest.mark.parametrize("target", ["exported", "onnx"])
def test_load_from_directory_and_from_manifest_runs_like_eager(built, env, target):
    x, mask = (np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32) for _ in range(2))
    want = eager(x, mask)
    for session in (buildsys.load(built[1][target].directory),
                    buildsys.load(env.root / "manifest.yaml", target=target, device="cpu")):
        assert session.device == "cpu" and session.artifact["target"] == target
        assert [i.name for i in session.inputs] == ["x", "mask"]
        assert [(o.name, o.dtype, o.shape) for o in session.outputs] == [("scores", "float32", ["batch", 4]),
                                                                       ("pooled", "float32", ["batch"])]
        got = session.run({"x": x, "mask": mask.tolist()})  # a list is converted to the input's dtype
        assert set(got) == {"scores", "pooled"}
        for name in got:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


def test_a_manifest_with_several_targets_needs_one_named(env):
    with pytest.raises(buildsys.BuildsysError, match="has 2 targets: name the one to load"):
        buildsys.load(env.root / "manifest.yaml")
    with pytest.raises(buildsys.BuildsysError, match="unknown target 'onxx'"):
        buildsys.load(env.root / "manifest.yaml", target="onxx")


@pytest.mark.parametrize("inputs, message", [
    ({"x": np.zeros((2, 8), np.float32)}, "missing input(s) 'mask': the artifact takes x (float32 [batch, 8]), mask"),
    ({"x": np.zeros((2, 8), np.float32), "mask": np.zeros((2, 8), np.float32), "extra": 1}, "unknown input(s) 'extra'"),
    ({"x": np.zeros((2, 8)), "mask": np.zeros((2, 8), np.float32)}, "input 'x' is float64; the artifact expects x (float32"),
    ({"x": np.zeros((2, 8, 1), np.float32), "mask": np.zeros((2, 8), np.float32)}, "input 'x' has shape [2, 8, 1] (3 axes)"),
    ({"x": np.zeros((2, 7), np.float32), "mask": np.zeros((2, 8), np.float32)}, "axis 1 must be 8"),
    ({"x": np.zeros((9, 8), np.float32), "mask": np.zeros((9, 8), np.float32)}, "axis 0 (batch) is 9, the artifact takes batch 1..8"),
    ({"x": np.zeros((2, 8), np.float32), "mask": np.zeros((3, 8), np.float32)}, "input 'mask' has batch 3 (axis 0) but input 'x' has batch 2"),
    (np.zeros((2, 8), np.float32), "pass a dict of 2 inputs by name"),
    ({"x": "text", "mask": np.zeros((2, 8), np.float32)}, "input 'x' cannot be read as float32"),
])
def test_bad_inputs_are_named_before_the_runtime_sees_them(built, inputs, message):
    session = buildsys.load(built[1]["onnx"].directory)
    with pytest.raises(buildsys.InputMismatch) as caught:
        session.run(inputs)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def _copy(built, target: str, tmp_path: Path) -> Path:
    copy = tmp_path / target
    shutil.copytree(built[1][target].directory, copy)
    return copy


def test_a_tampered_file_is_refused_before_anything_runs(built, tmp_path):
    copy = _copy(built, "onnx", tmp_path)
    model = next(copy.glob("*.onnx"))
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(buildsys.VerifyError, match="does not match its checksums; not loading it") as caught:
        buildsys.load(copy)
    assert f"{model}: sha256" in str(caught.value) or str(model) in str(caught.value)


def test_an_edited_artifact_json_is_refused(built, env, tmp_path):
    copy = _copy(built, "onnx", tmp_path)
    record = json.loads((copy / "artifact.json").read_text())
    record["precision"] = "fp16"  # the files still match: only provenance.json's digest catches it
    (copy / "artifact.json").write_text(json.dumps(record))
    with pytest.raises(buildsys.VerifyError, match="edited after the build"):
        buildsys.load(copy)
    # through the manifest, the lockfile's digest of artifact.json catches it
    target = built[1]["exported"].directory / "artifact.json"
    original = target.read_text()
    try:
        target.write_text(original.replace('"precision": "fp32"', '"precision": "int8"'))
        with pytest.raises(buildsys.VerifyError, match="not the lockfile's"):
            buildsys.load(env.root / "manifest.yaml", target="exported")
    finally:
        target.write_text(original)


def test_an_artifact_for_other_hardware_is_refused_with_the_reason(hello):
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    (hello.root / "manifest.yaml").write_text((hello.root / "manifest.yaml").read_text()
                                             + "  rtx-pack: {format: text.pack, hardware: [sm86, sm89]}\n")
    hello.cli("build", "manifest.yaml", "-t", "rtx-pack").assert_ok()
    with pytest.raises(buildsys.IncompatibleHardware, match=r"built for cuda-sm86.sm89; this host offers cpu-"):
        buildsys.load(hello.target_dir("hello", "1.0.0", "rtx-pack"))
    with pytest.raises(buildsys.IncompatibleHardware, match="this host has no GPU"):
        buildsys.load(hello.target_dir("hello", "1.0.0", "normalized"), device="cuda")
    text = buildsys.load(hello.root / "manifest.yaml", target="normalized")
    assert text.runner == "text" and text.outputs == []  # a text source names no outputs: numbered
    assert "hello, world." in text.run({})["output_0"].item().lower()


def test_build_failure_raises_with_the_report_or_returns_it_with_keep_going(hello):
    (hello.root / "manifest.yaml").write_text((hello.root / "manifest.yaml").read_text().replace(
        "stats:      {format: text.stats}", "stats:      {format: text.stats, options: {text.wordcount: {fail: true}}}"))
    with pytest.raises(buildsys.BuildFailed) as caught:
        buildsys.build("manifest.yaml", targets=["normalized", "stats"])
    report = caught.value.report
    assert report["stats"].status == "failed" and "fail: true" in report["stats"].error
    report = buildsys.build("manifest.yaml", targets=["normalized", "stats"], keep_going=True)
    assert not report.ok and report["normalized"].ok and report["normalized"].directory.is_dir()
    assert report["stats"].status == "failed" and report["stats"].directory is None
    with pytest.raises(buildsys.PlanError, match="unknown target"):
        buildsys.build("manifest.yaml", targets=["nope"])
