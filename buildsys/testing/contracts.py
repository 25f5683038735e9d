"""Contract suites: subclass one, fill in the class attributes, and pytest runs the checks.

Every first-party plugin runs these against itself, so a third party gets the same tests.
``RegistryContract`` lives in ``registry_contract.py`` and ``ExecutorContract`` in
``executor_contract.py``; all are importable from ``buildsys.testing``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
import tomllib
from pathlib import Path

import pytest

from .. import plugins
from ..artifacts import ARTIFACT_JSON
from ..errors import BackendUnavailable
from ..hashing import sha256_file
from ..specs import Requirement
from .runner import CliResult, ProjectDir


def _specs():
    """What the plugins register, loaded as the CLI would (honours BUILDSYS_PLUGIN_MODULES)."""
    return plugins.Catalog.collect(plugins.load(plugins.PluginConfig.from_options()))


class StageContract:
    """Checks one stage on a tiny model.

    Class attributes: ``stage`` (its name); ``manifest`` (YAML text of a tiny manifest, e.g.
    from ``tiny_torch_manifest``) with a target ``target`` whose build runs the stage; ``files``
    (what the manifest needs: relative path -> text or bytes); ``final`` (True: the stage makes
    the target's artifact; False: it makes a node the target needs, such as its reference
    outputs or its validation).

    Fixtures a subclass may override: ``cli_env`` (environment variables for every ``buildsys``
    run, e.g. a ``PYTHONPATH``) and ``built`` (a ``(project, manifest path, CliResult)`` of a
    successful build of ``target``, to share one build between several classes).

    The checks: the stage declares kinds that are registered; its options validate and refuse
    unknown keys; a build runs it and its output has the declared kind, with every file
    checksummed (in the lockfile, in artifact.json, and re-hashed by ``buildsys verify``); a
    second build is a cache hit; a missing requirement is ``BackendUnavailable`` naming the
    stage and the package, with the install command as its hint.
    """

    stage: str = ""
    target: str = ""
    manifest: str = ""
    files: dict[str, str | bytes] = {}
    final: bool = True

    @pytest.fixture
    def cli_env(self) -> dict[str, str]:
        return {}

    @pytest.fixture
    def spec(self):
        return _specs().stage(self.stage)

    @pytest.fixture
    def built(self, buildsys_project: ProjectDir, cli_env) -> tuple[ProjectDir, Path, CliResult]:
        path = buildsys_project.manifest(textwrap.dedent(self.manifest), files=self.files)
        result = buildsys_project.cli("build", path.name, "-t", self.target, env=cli_env)
        result.assert_ok()
        return buildsys_project, path, result

    def test_declares_registered_kinds(self, spec):
        catalog = _specs()
        kinds = set(catalog.kinds) | {s.kind for s in catalog.sources.values()}
        assert spec.produces in catalog.kinds, f"{spec.name} produces undeclared kind {spec.produces}"
        assert set(spec.consumes) <= kinds, f"{spec.name} consumes undeclared kinds {set(spec.consumes) - kinds}"

    def test_options_validate(self, spec, request):
        if spec.options is None:
            return
        try:
            given = spec.options.model_validate({}).model_dump(mode="json")
        except ValueError:  # required options (set by the planner): take those a build resolved
            project, path, _ = request.getfixturevalue("built")
            given = next(iter(self._locked_nodes(project, path).values()))["options"]
        options = spec.options.model_validate(given)
        assert spec.options.model_validate(options.model_dump(mode="json")) == options, "options do not round-trip"
        with pytest.raises(ValueError) as info:
            spec.options.model_validate({**given, "no_such_option_for_the_contract": 1})
        assert "no_such_option_for_the_contract" in str(info.value), "unknown options must be refused"

    def test_run_produces_declared_kind_checksummed(self, spec, built, cli_env):
        project, path, _ = built
        nodes = self._locked_nodes(project, path)
        assert nodes, f"building target '{self.target}' ran no '{self.stage}' node"
        for node_id, node in nodes.items():
            assert node["kind"] == spec.produces, f"{node_id} made {node['kind']}, declared {spec.produces}"
            assert node["outputs"], f"{node_id} produced no files"
            assert all(len(f["sha256"]) == 64 and f["size"] >= 0 for f in node["outputs"])
        if self.final:
            self._check_artifact(spec, project, path)
        project.cli("verify", path.name, env=cli_env).assert_ok()

    def test_second_run_hits_the_cache(self, built, cli_env):
        project, path, _ = built
        again = project.cli("build", path.name, "-t", self.target, env=cli_env)
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

    def _locked_nodes(self, project: ProjectDir, path: Path) -> dict[str, dict]:
        lock = tomllib.loads(project.lock(path.name).read_text())
        needed = set(lock["targets"][self.target]["nodes"])
        return {n: node for n, node in lock["nodes"].items() if n in needed and node["stage"] == self.stage}

    def _check_artifact(self, spec, project: ProjectDir, path: Path) -> None:
        directory = self._target_dir(project, path)
        record = json.loads((directory / ARTIFACT_JSON).read_text())
        assert record["chain"][-1]["stage"] == spec.name, \
            f"target '{self.target}' is made by {record['chain'][-1]['stage']}; set final = False if that is right"
        assert record["kind"] == spec.produces
        assert record["files"], "the stage produced no files"
        for f in record["files"]:
            assert sha256_file(directory / f["name"]) == f["sha256"]

    def _target_dir(self, project: ProjectDir, path: Path) -> Path:
        import yaml

        data = yaml.safe_load(path.read_text())
        return project.target_dir(data["name"], data["version"], self.target)


def shared_build(manifest: str, *, files: dict[str, str | bytes] | None = None, copy: Path | None = None,
                 args: tuple[str, ...] = ("-j", "2")):
    """A module-scoped fixture named ``shared_build`` that builds ``manifest`` once, so several
    contract classes (one per stage of a chain) share one build::

        shared_build = shared_build(MANIFEST, copy=Path(__file__).parent / "models")

        class TestMyExport(SharedStageContract):
            stage, target, manifest = "my.export", "exported", MANIFEST

    ``files`` are written into the project; ``copy`` is a folder copied into it under its own
    name (e.g. the tests' ``models/``). It returns ``(project, manifest path, CliResult)``.
    """

    @pytest.fixture(scope="module", name="shared_build")
    def fixture(tmp_path_factory):
        project = ProjectDir(tmp_path_factory.mktemp("shared") / "project")
        if copy is not None:
            shutil.copytree(copy, project.root / Path(copy).name, ignore=shutil.ignore_patterns("__pycache__"))
        path = project.manifest(textwrap.dedent(manifest), files=files)
        return project, path, project.cli("build", path.name, *args).assert_ok()

    return fixture


class SharedStageContract(StageContract):
    """``StageContract`` checked on the module's ``shared_build`` fixture (see ``shared_build``)."""

    @pytest.fixture
    def built(self, shared_build):
        return shared_build
