"""Contract suites: subclass one, fill in the class attributes, and pytest runs the checks.

Every first-party plugin runs these against itself, so a third party gets the same tests.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from .. import plugins
from ..artifacts import ARTIFACT_JSON
from ..errors import BackendUnavailable, ImmutableVersion, RegistryError, VerifyError
from ..fsutil import sha256_file
from ..registry import ArtifactRef
from ..specs import Requirement
from .runner import ProjectDir

_HELLO = """
schema: 1
name: contract
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  first: {format: text}
  second: {format: text, options: {text.normalize: {lowercase: true}}}
"""


def _specs():
    return plugins.Specs.collect(plugins.load())


class StageContract:
    """Checks one stage. Set ``stage`` (its name), ``manifest`` (YAML text of a tiny manifest
    with a target ``target`` whose chain ends in the stage) and ``files`` (files the manifest
    needs, relative path -> text)."""

    stage: str = ""
    target: str = ""
    manifest: str = ""
    files: dict[str, str] = {}

    @pytest.fixture
    def spec(self):
        return _specs().stage(self.stage)

    @pytest.fixture
    def built(self, buildsys_project: ProjectDir):
        path = buildsys_project.manifest(textwrap.dedent(self.manifest), files=self.files)
        result = buildsys_project.cli("build", path.name, "-t", self.target)
        result.assert_ok()
        return buildsys_project, path, result

    def test_declares_registered_kinds(self, spec):
        specs = _specs()
        kinds = set(specs.kinds) | {s.kind for s in specs.sources.values()}
        assert spec.produces in specs.kinds, f"{spec.name} produces undeclared kind {spec.produces}"
        assert set(spec.consumes) <= kinds, f"{spec.name} consumes undeclared kinds {set(spec.consumes) - kinds}"

    def test_options_validate(self, spec):
        if spec.options is None:
            return
        defaults = spec.options.model_validate({})
        assert spec.options.model_validate(defaults.model_dump()) == defaults
        with pytest.raises(Exception) as info:
            spec.options.model_validate({"no_such_option_for_the_contract": 1})
        assert "no_such_option_for_the_contract" in str(info.value)

    def test_run_produces_declared_kind_checksummed(self, spec, built):
        project, path, _ = built
        record = json.loads((self._target_dir(project, path) / ARTIFACT_JSON).read_text())
        assert record["kind"] == spec.produces
        assert record["chain"][-1]["stage"] == spec.name
        assert record["files"], "the stage produced no files"
        for f in record["files"]:
            assert sha256_file(self._target_dir(project, path) / f["name"]) == f["sha256"]

    def test_second_run_hits_the_cache(self, built):
        project, path, _ = built
        again = project.cli("build", path.name, "-t", self.target)
        again.assert_ok()
        assert again.nodes("built") == [], f"rebuild ran {again.nodes('built')}"
        assert any(n.split("#")[0] == self.stage for n in again.nodes("cached"))

    def test_missing_dependency_is_backend_unavailable(self, spec, monkeypatch):
        missing = Requirement("buildsys-contract-absent-package", ">=1", "pip install buildsys-contract-absent-package")
        for requirement in (*spec.requires, missing):
            probe = dataclasses.replace(spec, requires=(requirement,))
            monkeypatch.setattr(Requirement, "installed_version", lambda self: None)
            with pytest.raises(BackendUnavailable) as info:
                probe.check_requirements()
            monkeypatch.undo()
            assert spec.name in str(info.value) and requirement.distribution in str(info.value)
            assert info.value.hint, "BackendUnavailable must carry the install command"

    def _target_dir(self, project: ProjectDir, path: Path) -> Path:
        import yaml

        data = yaml.safe_load(path.read_text())
        return project.target_dir(data["name"], data["version"], self.target)


class RegistryContract:
    """Checks a registry. Provide a ``registry_url`` fixture returning a URL of an empty registry."""

    @pytest.fixture
    def registry_url(self):
        raise NotImplementedError("subclass RegistryContract and define a registry_url fixture")

    @pytest.fixture
    def registry(self, registry_url):
        from ..registry import open_registry

        return open_registry(_specs(), registry_url)

    @pytest.fixture
    def built(self, buildsys_project: ProjectDir):
        path = buildsys_project.manifest(_HELLO, files={"model.txt": "Hello Registry\n"})
        buildsys_project.cli("build", path.name).assert_ok()
        return buildsys_project

    def _dir(self, project: ProjectDir, target: str = "first") -> Path:
        return project.target_dir("contract", "1.0.0", target)

    def test_publish_then_list(self, registry, built):
        result = registry.publish(self._dir(built))
        assert result.created
        assert ArtifactRef("contract", "1.0.0", "first") in [
            ArtifactRef(r.name, r.version, r.target) for r in registry.list()]

    def test_pull_round_trip_verifies(self, registry, built, tmp_path):
        registry.publish(self._dir(built))
        pulled = registry.pull(ArtifactRef("contract", "1.0.0", "first"), tmp_path / "pulled")
        record = json.loads((pulled / ARTIFACT_JSON).read_text())
        for f in record["files"]:
            assert sha256_file(pulled / f["name"]) == f["sha256"]
            assert (pulled / f["name"]).read_bytes() == (self._dir(built) / f["name"]).read_bytes()

    def test_republish_same_digest_is_noop(self, registry, built):
        assert registry.publish(self._dir(built)).created
        assert not registry.publish(self._dir(built)).created

    def test_different_digest_same_version_is_refused(self, registry, built, tmp_path):
        registry.publish(self._dir(built))
        impostor = tmp_path / "impostor" / "first"
        import shutil

        shutil.copytree(self._dir(built, "second"), impostor)
        record = json.loads((impostor / ARTIFACT_JSON).read_text())
        record["target"] = "first"
        (impostor / ARTIFACT_JSON).write_text(json.dumps(record))
        with pytest.raises(ImmutableVersion):
            registry.publish(impostor)

    def test_edited_artifact_is_refused(self, registry, built):
        directory = self._dir(built)
        record = json.loads((directory / ARTIFACT_JSON).read_text())
        victim = directory / record["files"][0]["name"]
        victim.chmod(0o644)
        victim.write_text("tampered\n")
        with pytest.raises(VerifyError):
            registry.publish(directory)
        assert ArtifactRef("contract", "1.0.0", "first") not in [
            ArtifactRef(r.name, r.version, r.target) for r in registry.list()]

    def test_pull_unknown_is_a_clear_error(self, registry, tmp_path):
        with pytest.raises(RegistryError) as info:
            registry.pull(ArtifactRef("contract", "9.9.9", "first"), tmp_path / "x")
        assert "contract/9.9.9/first" in str(info.value)

    def test_path_traversal_is_refused(self, registry, tmp_path):
        with pytest.raises(RegistryError):
            registry.pull(ArtifactRef("..", "1.0.0", "first"), tmp_path / "x")
