"""Contract suites: subclass one, fill in the class attributes, and pytest runs the checks.

Every first-party plugin runs these against itself, so a third party gets the same tests.
``ExecutorContract`` lives in ``executor_contract.py``; all three are importable from
``buildsys.testing``.
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
from ..errors import BackendUnavailable, ImmutableVersion, RegistryError, RegistryUnavailable, VerifyError
from ..fsutil import sha256_file
from ..registry import ArtifactRef, local_tree
from ..specs import Requirement
from ..transfer import Retry
from .faultproxy import free_port
from .runner import CliResult, ProjectDir

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
    """What the plugins register, loaded as the CLI would (honours BUILDSYS_PLUGIN_MODULES)."""
    return plugins.Specs.collect(plugins.load(plugins.PluginConfig.from_options()))


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
        specs = _specs()
        kinds = set(specs.kinds) | {s.kind for s in specs.sources.values()}
        assert spec.produces in specs.kinds, f"{spec.name} produces undeclared kind {spec.produces}"
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


class RegistryContract:
    """Checks a registry. Define these fixtures in the subclass:

    ``registry_url``   the URL of an empty registry (required);
    ``tamper``         a function ``tamper(ref, what)`` that alters the registry's stored copy of
                       ``ref`` behind its back: ``what`` is ``"file"`` (the bytes of its first
                       file) or ``"metadata"`` (what the registry serves as its manifest or
                       artifact.json) (required);
    ``fault_proxy``    a started ``buildsys.testing.FaultProxy`` in front of the server, for
                       registries reached over HTTP; the default None skips the network checks
                       (retries of resets and 5xx, bounded retries, a registry that is down).
    """

    #: fast backoff, so that the retry checks take a fraction of a second
    retry = Retry(attempts=4, base=0.02, cap=0.1)

    @pytest.fixture
    def registry_url(self):
        raise NotImplementedError("subclass RegistryContract and define a registry_url fixture")

    @pytest.fixture
    def tamper(self):
        raise NotImplementedError("subclass RegistryContract and define a tamper(ref, what) fixture")

    @pytest.fixture
    def fault_proxy(self):
        return None

    def open(self, url: str):
        from ..registry import open_registry

        return open_registry(_specs(), url, retry=self.retry)

    @pytest.fixture
    def registry(self, registry_url):
        return self.open(registry_url)

    @pytest.fixture
    def proxied(self, registry_url, fault_proxy):
        if fault_proxy is None:
            pytest.skip("this registry is not reached over the network")
        assert fault_proxy.upstream in registry_url, "fault_proxy.upstream must be the registry_url's host:port"
        return self.open(registry_url.replace(fault_proxy.upstream, fault_proxy.address)), fault_proxy

    @pytest.fixture(scope="class")
    @classmethod
    def built_once(cls, tmp_path_factory) -> ProjectDir:
        project = ProjectDir(tmp_path_factory.mktemp("registry-contract"))
        path = project.manifest(_HELLO, files={"model.txt": "Hello Registry\n"})
        project.cli("build", path.name).assert_ok()
        return project

    @pytest.fixture
    def built(self, buildsys_project: ProjectDir, built_once: ProjectDir):
        """A project with both targets built: a copy of one build per class (tests edit it)."""
        shutil.copytree(built_once.root, buildsys_project.root, symlinks=True, dirs_exist_ok=True)
        return buildsys_project

    def _dir(self, project: ProjectDir, target: str = "first") -> Path:
        return project.target_dir("contract", "1.0.0", target)

    def _listed(self, registry, name: str | None = None) -> list[ArtifactRef]:
        return [ArtifactRef(r.name, r.version, r.target) for r in registry.list(name)]

    FIRST = ArtifactRef("contract", "1.0.0", "first")

    # -- publish, list, exists, pull ------------------------------------------------------------

    def test_publish_then_list(self, registry, built):
        result = registry.publish(self._dir(built))
        assert result.created and not result.dry_run
        assert self.FIRST in self._listed(registry)

    def test_list_reports_digest_and_hardware_and_filters_by_name(self, registry, built):
        local = json.loads((self._dir(built) / ARTIFACT_JSON).read_text())
        first = registry.publish(self._dir(built)).ref
        registry.publish(self._dir(built, "second"))
        [listed] = [r for r in registry.list("contract") if r.target == "first"]
        assert listed.digest == first.digest and listed.hardware == local["hardware"]
        assert sorted(r.target for r in registry.list("contract")) == ["first", "second"]
        assert registry.list("nothing-by-this-name") == []

    def test_exists(self, registry, built):
        assert not registry.exists(self.FIRST)
        registry.publish(self._dir(built))
        assert registry.exists(self.FIRST)
        assert not registry.exists(ArtifactRef("contract", "1.0.0", "second"))
        assert not registry.exists(ArtifactRef("contract", "9.9.9", "first"))

    def test_pull_round_trip_verifies(self, registry, built, tmp_path):
        registry.publish(self._dir(built))
        seen = []
        pulled = registry.pull(self.FIRST, tmp_path / "pulled", progress=lambda name, size: seen.append(name))
        assert pulled == tmp_path / "pulled" / "first"
        record = json.loads((pulled / ARTIFACT_JSON).read_text())
        assert record == json.loads((self._dir(built) / ARTIFACT_JSON).read_text())
        for f in record["files"]:
            assert sha256_file(pulled / f["name"]) == f["sha256"]
            assert (pulled / f["name"]).read_bytes() == (self._dir(built) / f["name"]).read_bytes()
        assert seen == [f["name"] for f in record["files"]]
        assert sorted(p.name for p in (tmp_path / "pulled").iterdir()) == ["first"], "staging left behind"

    # -- immutability, dry run -------------------------------------------------------------------

    def test_republish_same_digest_is_noop(self, registry, built):
        assert registry.publish(self._dir(built)).created
        assert not registry.publish(self._dir(built)).created

    def test_different_digest_same_version_is_refused(self, registry, built, tmp_path):
        original = registry.publish(self._dir(built)).ref
        impostor = self._impostor(built, tmp_path)
        with pytest.raises(ImmutableVersion) as info:
            registry.publish(impostor)
        message = str(info.value)
        assert original.digest[:16] in message, "the message must name the published digest"
        assert local_tree(impostor)[0].digest[:16] in message, "the message must name the refused digest"
        with pytest.raises(ImmutableVersion):
            registry.publish(impostor, dry_run=True)

    def _impostor(self, project: ProjectDir, tmp_path: Path) -> Path:
        impostor = tmp_path / "impostor" / "first"
        shutil.copytree(self._dir(project, "second"), impostor)
        record = json.loads((impostor / ARTIFACT_JSON).read_text())
        record["target"] = "first"
        (impostor / ARTIFACT_JSON).write_text(json.dumps(record))
        return impostor

    def test_dry_run_writes_nothing(self, registry, built):
        result = registry.publish(self._dir(built), dry_run=True)
        assert result.dry_run and result.created
        assert not registry.exists(self.FIRST) and self.FIRST not in self._listed(registry)
        assert registry.publish(self._dir(built)).created
        again = registry.publish(self._dir(built), dry_run=True)
        assert again.dry_run and not again.created

    def test_edited_artifact_is_refused(self, registry, built):
        directory = self._dir(built)
        record = json.loads((directory / ARTIFACT_JSON).read_text())
        victim = directory / record["files"][0]["name"]
        victim.chmod(0o644)
        victim.write_text("tampered\n")
        with pytest.raises(VerifyError):
            registry.publish(directory)
        assert self.FIRST not in self._listed(registry)

    def test_interrupted_publish_leaves_no_complete_version(self, registry, built):
        def interrupt(name, size):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            registry.publish(self._dir(built), progress=interrupt)
        assert not registry.exists(self.FIRST)
        assert self.FIRST not in self._listed(registry)
        assert registry.publish(self._dir(built)).created, "a publish after an interrupted one must complete"

    # -- pulls that must fail, leaving nothing behind --------------------------------------------

    def test_pull_unknown_is_a_clear_error(self, registry, built, tmp_path):
        registry.publish(self._dir(built))
        for ref in (ArtifactRef("contract", "9.9.9", "first"), ArtifactRef("contract", "1.0.0", "third"),
                    ArtifactRef("nobody", "1.0.0", "first")):
            with pytest.raises(RegistryError) as info:
                registry.pull(ref, tmp_path / "x")
            assert str(ref) in str(info.value)
            assert not (tmp_path / "x").exists()

    def test_path_traversal_is_refused(self, registry, tmp_path):
        with pytest.raises(RegistryError):
            registry.pull(ArtifactRef("..", "1.0.0", "first"), tmp_path / "x")
        assert not (tmp_path / "x").exists()

    @pytest.mark.parametrize("what", ["file", "metadata"])
    def test_tampered_copy_in_registry_fails_the_pull(self, registry, built, tamper, tmp_path, what):
        ref = registry.publish(self._dir(built)).ref
        tamper(ref, what)
        with pytest.raises(VerifyError):
            registry.pull(self.FIRST, tmp_path / "dest")
        assert not (tmp_path / "dest").exists(), "a failed pull wrote to its destination"

    # -- the network: transient faults are retried, within bounds ---------------------------------

    @pytest.mark.parametrize("how", ["reset", "503"])
    def test_transient_faults_are_retried(self, proxied, built, tmp_path, how):
        registry, proxy = proxied
        proxy.fail(how, times=2)
        assert registry.publish(self._dir(built)).created
        proxy.fail(how, times=2)
        registry.pull(self.FIRST, tmp_path / "pulled")
        assert (tmp_path / "pulled" / "first" / ARTIFACT_JSON).exists()
        assert proxy.injected == 4

    def test_retries_are_bounded(self, proxied, built, tmp_path):
        registry, proxy = proxied
        proxy.fail("503", times=None)
        with pytest.raises(RegistryUnavailable) as info:
            registry.publish(self._dir(built))
        assert "attempts" in str(info.value)
        assert proxy.injected <= 4 * self.retry.attempts, f"{proxy.injected} requests for one publish"
        proxy.clear()
        assert not registry.exists(self.FIRST)
        with pytest.raises(RegistryUnavailable):
            proxy.fail("reset", times=None)
            registry.pull(self.FIRST, tmp_path / "dest")
        assert not (tmp_path / "dest").exists()

    def test_registry_down_is_a_clear_error(self, registry_url, fault_proxy, built, tmp_path):
        if fault_proxy is None:
            pytest.skip("this registry is not reached over the network")
        down = f"127.0.0.1:{free_port()}"
        registry = self.open(registry_url.replace(fault_proxy.upstream, down))
        for call in (lambda: registry.publish(self._dir(built)), lambda: registry.list(),
                     lambda: registry.pull(self.FIRST, tmp_path / "dest")):
            with pytest.raises(RegistryUnavailable) as info:
                call()
            assert down in str(info.value), f"the error must name the address: {info.value}"
        assert not (tmp_path / "dest").exists()
