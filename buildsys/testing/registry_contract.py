"""``RegistryContract``: the checks every registry plugin passes (publish, pull, list, exists,
immutability, tampering, path traversal, transient faults), on a tiny text project it builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ..artifacts import ARTIFACT_JSON, artifact_digest, read_record
from ..errors import ImmutableVersion, RegistryError, RegistryUnavailable, VerifyError
from ..hashing import sha256_file
from ..registry import ArtifactRef, local_tree
from ..transfer import Retry
from .contracts import _specs
from .faultproxy import free_port
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


class RegistryContract:
    """Checks a registry. Define these fixtures in the subclass:

    ``registry_url``   the URL of an empty registry (required);
    ``tamper``         a function ``tamper(ref, what)`` that alters the registry's stored copy of
                       ``ref`` behind its back: ``what`` is ``"file"`` (the bytes of its first
                       file), ``"metadata"`` (what the registry serves as its manifest or
                       artifact.json) or ``"escape"``: a consistent forgery, as someone with
                       write access to the registry could make, whose artifact.json lists its
                       first file as ``../../../escaped.bin`` *and* whose recorded digest is
                       updated to match, so that only the name check can catch it (required);
    ``fault_proxy``    a started ``buildsys.testing.FaultProxy`` in front of the server, for
                       registries reached over HTTP; the default None skips the network checks
                       (retries of resets and 5xx, bounded retries, a registry that is down).
    """

    #: fast backoff, so that the retry checks take a fraction of a second
    retry = Retry(attempts=4, base=0.02, cap=0.1)
    #: why this registry cannot honour ``Retry-After`` ("" if it does): a client library that
    #: hides the answer's headers (say which, so users know)
    retry_after_unsupported = ""

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

    def test_a_listed_name_that_escapes_the_target_folder_is_refused(self, registry, built, tamper, tmp_path):
        """The one path check (``buildsys.safe_member``) holds even where digests were forged."""
        ref = registry.publish(self._dir(built)).ref
        tamper(ref, "escape")
        dest = tmp_path / "a" / "b" / "c" / "dest"
        with pytest.raises(VerifyError, match="unsafe file name"):
            registry.pull(self.FIRST, dest)
        assert not dest.exists(), "a failed pull wrote to its destination"
        assert not list((tmp_path / "a").rglob("escaped.bin")), "the pull wrote outside its destination"

    def test_a_pinned_digest_is_checked_before_anything_is_fetched(self, registry, built, tmp_path):
        ref = registry.publish(self._dir(built)).ref
        assert ref.digest.startswith("sha256:") and len(ref.digest) == 71
        [listed] = [r for r in registry.list("contract") if r.target == "first"]
        assert listed.digest == ref.digest, "list must report the artifact digest the publish recorded"
        other = ArtifactRef(ref.name, ref.version, ref.target, "sha256:" + "0" * 64)
        with pytest.raises(VerifyError, match="pinned"):
            registry.pull(other, tmp_path / "dest")
        assert not (tmp_path / "dest").exists()
        registry.pull(ref, tmp_path / "dest")
        assert artifact_digest(read_record(tmp_path / "dest" / "first")) == ref.digest

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

    def test_a_registrys_retry_after_is_waited_for(self, proxied, built):
        if self.retry_after_unsupported:
            pytest.skip(self.retry_after_unsupported)
        registry, proxy = proxied
        waited: list[float] = []
        registry.retry = Retry(attempts=4, base=0.02, cap=0.1, max_wait=30, sleep=waited.append)
        proxy.fail("503", times=1, retry_after=7)
        assert registry.publish(self._dir(built)).created
        assert waited and max(waited) >= 7, f"Retry-After: 7 was not honoured (waited {waited})"

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
