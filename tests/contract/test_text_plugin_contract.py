"""The first-party text plugin passes the same contract suites a third party would use."""

from __future__ import annotations

import json
import os

import pytest

from buildsys import artifact_digest
from buildsys.hashing import sha256_file
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


SPELLING = """
schema: 1
name: spelling
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  spelling: {format: text.spelling}
"""


@pytest.fixture(scope="module")
def spellchecker_site(tmp_path_factory):
    """A stand-in for the pyspellchecker distribution that text.spellcheck requires: metadata
    (so the requirement is met) and a module with its one call the stage makes."""
    site = tmp_path_factory.mktemp("site")
    (site / "pyspellchecker-0.8.1.dist-info").mkdir()
    (site / "pyspellchecker-0.8.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pyspellchecker\nVersion: 0.8.1\n")
    (site / "spellchecker.py").write_text(
        "class SpellChecker:\n"
        "    def unknown(self, words):\n"
        "        return {w for w in words if not w.isalpha()}\n")
    return site


class TestSpellcheck(StageContract):
    """The stage whose requirement is missing here, built with the stand-in on PYTHONPATH."""

    stage, target, manifest, files = "text.spellcheck", "spelling", SPELLING, FILES

    @pytest.fixture
    def cli_env(self, spellchecker_site):
        return {"PYTHONPATH": os.pathsep.join(filter(None, [str(spellchecker_site), os.environ.get("PYTHONPATH")]))}

    def test_spelling_lists_the_unknown_words(self, built):
        project, _, _ = built
        [out] = project.target_dir("spelling", "1.0.0", "spelling").glob("spelling-*.json")
        assert json.loads(out.read_text()) == []  # "Héllo contract": both words are alphabetic


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
            elif what == "metadata":
                record["files"][0]["sha256"] = "0" * 64
                (stored / "artifact.json").write_text(json.dumps(record))
            else:  # escape: a forged listing, with the index made to agree
                outside = tmp_path / "escaped.bin"
                outside.write_bytes(b"a file outside the registry")
                record["files"][0] = {"name": "../../../../escaped.bin", "sha256": sha256_file(outside),
                                      "size": outside.stat().st_size}
                (stored / "artifact.json").write_text(json.dumps(record))
                (stored.parent / ".digests" / ref.target).write_text(artifact_digest(record) + "\n")

        return tamper
