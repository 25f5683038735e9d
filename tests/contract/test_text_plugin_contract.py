"""The first-party text plugin passes the same contract suites a third party would use."""

from __future__ import annotations

import json

import pytest

from buildsys.testing import RegistryContract, StageContract

MANIFEST = """
schema: 1
name: contract
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
  ascii: {format: text, precision: int8}
  stats: {format: text.stats}
  stamped: {format: text.stamped}
  native: {format: text.bin, hardware: cpu}
  packed: {format: text.pack, hardware: sm89}
"""
FILES = {"model.txt": "Héllo contract\n"}


class TestNormalize(StageContract):
    stage, target, manifest, files = "text.normalize", "normalized", MANIFEST, FILES


class TestAscii(StageContract):
    stage, target, manifest, files = "text.ascii", "ascii", MANIFEST, FILES


class TestWordcount(StageContract):
    stage, target, manifest, files = "text.wordcount", "stats", MANIFEST, FILES


class TestStamp(StageContract):
    stage, target, manifest, files = "text.stamp", "stamped", MANIFEST, FILES


class TestCompile(StageContract):
    stage, target, manifest, files = "text.compile", "native", MANIFEST, FILES


class TestPack(StageContract):
    stage, target, manifest, files = "text.pack", "packed", MANIFEST, FILES


class TestFileRegistry(RegistryContract):
    @pytest.fixture
    def registry_url(self, tmp_path):
        return (tmp_path / "registry").as_uri()

    @pytest.fixture
    def tamper(self, tmp_path):
        def tamper(ref, what):
            stored = tmp_path / "registry" / ref.name / ref.version / ref.target
            record = json.loads((stored / "artifact.json").read_text())
            if what == "file":
                victim = stored / record["files"][0]["name"]
                victim.chmod(0o644)
                victim.write_bytes(victim.read_bytes() + b"!")
            else:
                record["files"][0]["sha256"] = "0" * 64
                (stored / "artifact.json").write_text(json.dumps(record))

        return tamper
