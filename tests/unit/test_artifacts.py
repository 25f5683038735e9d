"""Artifact directories: wheel-style names computed once, artifact.json records from a settled
build, writing (staged, skipped when current), reading back, and re-hashing."""

from __future__ import annotations

import json
import os

import pytest
from graphs import graph, settle

from buildsys import artifacts
from buildsys.cache import Store
from buildsys.manifest import load

MANIFEST = """
schema: 1
name: tiny
version: 2.0.0
model:
  framework: text
  entrypoint: model.txt
  inputs: [{name: x, dtype: float32, shape: [batch, 4]}]
  dims: {batch: {min: 1, max: 8}}
targets:
  tb: {format: b}
  tc: {format: c, precision: fp32}
"""
EDGES = {"source:x": (), "a#1": ("source:x",), "b#1": ("a#1",), "c#1": ("a#1",), "validate#1": ("b#1",)}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.txt").write_text("hi")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"}, validations={"tb": "validate#1"})
    return load(tmp_path / "m.yaml"), g, settle(g)


def record(project, target="tb"):
    manifest, g, settled = project
    return artifacts.target_record(manifest, g, target, settled, runtime={"tool": "1.0"}, host={"facts": {}},
                                   version="0.1")


def test_names_carry_the_tags_and_only_the_primary_is_renamed(project):
    manifest, g, settled = project
    assert artifacts.wheel_name("m", "1.0", "tensorrt", "fp16", "cuda-sm86.sm89", ".plan", "trtrtx1.7") == \
        "m-1.0-tensorrt-fp16-trtrtx1.7-cuda_sm86.sm89.plan"
    names = artifacts.file_names(manifest, "tb", settled.entries["b#1"], "any")
    assert names == {"model.bin": "tiny-2.0.0-b-fp32-t1-any.bin"}
    assert [f.name for f in artifacts.final_files(settled.entries["b#1"], names)] == ["tiny-2.0.0-b-fp32-t1-any.bin"]


def test_the_record_names_the_chain_validation_and_signature(project):
    manifest, g, settled = project
    rec = record(project)
    assert (rec["name"], rec["version"], rec["target"], rec["kind"]) == ("tiny", "2.0.0", "tb", "b.kind")
    assert [c["node"] for c in rec["chain"]] == ["source:x", "a#1", "b#1"]
    assert rec["chain"][-1]["action_key"] == settled.actions["b#1"].key
    assert rec["validation"]["status"] == "passed" and rec["validation"]["action_key"] == settled.entries["validate#1"].key
    assert record(project, "tc")["validation"] == {"status": "not run", "reason": "not planned"}
    assert rec["signature"]["inputs"][0]["name"] == "x" and rec["signature"]["dims"] == {"batch": {"min": 1, "max": 8}}
    assert "primary" not in rec["meta"] and rec["meta"]["tool_tag"] == "t1"


def test_written_once_then_current_until_anything_is_touched(project, tmp_path):
    manifest, g, settled = project
    store = Store(tmp_path / "store")
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.bin").write_bytes(b"0123456")
    entry = store.commit(settled.entries["b#1"].key, work, settled.entries["b#1"].meta, 0.5)
    writer = artifacts.ArtifactWriter(store, tmp_path / "out")
    names = artifacts.file_names(manifest, "tb", entry, "any")
    rec = artifacts.with_files(dict(record(project), chain=[{"action_key": "k1"}]), entry, names)
    directory = writer.write(manifest, "tb", entry, rec, names, provenance={"payload": "p"})
    meta = directory / artifacts.ARTIFACT_JSON
    written = json.loads(meta.read_text())
    assert written == rec and written["files"][0]["role"] == "primary"
    assert json.loads((directory / artifacts.PROVENANCE).read_text()) == {"payload": "p"}
    assert artifacts.check_files(directory, written["files"]) == []
    stamp = meta.stat().st_mtime_ns
    assert writer.write(manifest, "tb", entry, rec, names) == directory and meta.stat().st_mtime_ns == stamp
    # a same-size edit in place with its mtime restored is still seen (the ctime moves) and repaired
    artifact = directory / "tiny-2.0.0-b-fp32-t1-any.bin"
    before = artifact.stat()
    artifact.write_bytes(b"6543210")
    os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
    writer.write(manifest, "tb", entry, rec, names)
    assert artifact.read_bytes() == b"0123456"
    # so is a consistent edit of artifact.json alone (another hardware tag)
    meta.write_text(json.dumps(dict(rec, hardware="cuda-sm90")))
    writer.write(manifest, "tb", entry, rec, names)
    assert json.loads(meta.read_text()) == rec


def test_the_artifact_digest_covers_every_value_and_no_formatting(project):
    rec = record(project)
    digest = artifacts.artifact_digest(rec)
    assert digest.startswith("sha256:") and artifacts.artifact_digest(json.loads(json.dumps(rec, indent=4))) == digest
    for key, value in [("hardware", "cuda-sm90"), ("precision", "int8"), ("validation", {"status": "failed"})]:
        assert artifacts.artifact_digest(dict(rec, **{key: value})) != digest, key


def test_check_files_names_missing_changed_and_unexpected_files(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "extra.bin").write_bytes(b"x")
    files = [{"name": "a.bin", "sha256": "0" * 64, "size": 1}, {"name": "gone.bin", "sha256": "1" * 64, "size": 1}]
    problems = artifacts.check_files(tmp_path, files)
    assert any("a.bin: sha256" in p for p in problems) and any("gone.bin: missing" in p for p in problems)
    assert any("extra.bin: not recorded" in p for p in problems)


def test_one_reader_for_built_and_unbuilt_targets(project, tmp_path):
    manifest, _, _ = project
    directory = artifacts.target_dir(tmp_path / "out", "tiny", "2.0.0", "tb")
    directory.mkdir(parents=True)
    rec = {"kind": "onnx", "precision": "fp32", "hardware": "any", "meta": {"opset": 21},
           "files": [{"name": "m.onnx", "sha256": "0" * 64, "size": 1, "role": "primary"},
                     {"name": "m.onnx.data", "sha256": "1" * 64, "size": 1, "role": "data"}]}
    (directory / artifacts.ARTIFACT_JSON).write_text(json.dumps(rec))
    assert artifacts.built_records(tmp_path / "out", manifest) == {"tb": rec, "tc": None}
    artifact = artifacts.input_artifact(directory, rec)
    assert artifact.primary == directory / "m.onnx" and artifact.meta["opset"] == 21


def test_runtime_mismatches_compare_the_installed_release_with_the_targets_range():
    from importlib.metadata import version

    from buildsys.artifacts import runtime_mismatches

    here = version("pyyaml")
    assert runtime_mismatches({}) == [] == runtime_mismatches({"runtimes": {"pyyaml": ">=1"}})
    assert runtime_mismatches({"runtimes": {"pyyaml": "<1"}}) == [f"built for pyyaml <1; this machine has pyyaml {here}"]
    assert runtime_mismatches({"runtimes": {"no-such-runtime-xyz": ">=1"}}) == []  # not installed: not checked
