"""The OCI registry plugin against a real docker-registry (CNCF Distribution) on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from registry_credentials import OCI_PASSWORD, OCI_USER

from buildsys import artifact_digest
from buildsys.testing import FaultProxy, RegistryContract

TARGETS = """
schema: 1
name: hello
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  portable: {format: text}
  native:   {format: text.bin, hardware: cpu}
  rtx:      {format: text.pack, hardware: [sm86, sm89]}
  hopper:   {format: text.pack, hardware: h100}
"""


def fetch(server, path: str, accept: str = "application/vnd.oci.image.manifest.v1+json"):
    request = urllib.request.Request(f"http://{server.address}{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read(), dict(answer.headers)


def forge_escape(server, repository: str, tag: str) -> None:
    """Re-point ``tag`` at a manifest whose config (artifact.json) lists ``../../../../escaped.bin``,
    with every digest made to agree: what someone with push access could publish."""
    from buildsys_oci import canonical_record
    from buildsys_oci.client import Client

    manifest = json.loads(fetch(server, f"/v2/{repository}/manifests/{tag}")[0])
    record = json.loads(fetch(server, f"/v2/{repository}/blobs/{manifest['config']['digest']}", "*/*")[0])
    record["files"][0]["name"] = "../../../../escaped.bin"
    config = canonical_record(record)
    digest = artifact_digest(record)
    client = Client(server.address, True, None)
    client.push_blob(repository, digest, len(config), data=config)
    manifest["config"] |= {"digest": digest, "size": len(config)}
    manifest["annotations"]["dev.buildsys.digest"] = digest
    client.put_manifest(repository, tag, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())


class TestOciRegistry(RegistryContract):
    @pytest.fixture
    def registry_url(self, oci_server):
        return f"oci://{oci_server.address}/contract/t{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def tamper(self, oci_server, registry_url):
        """Alter a blob in the registry's storage; put it back afterwards (blobs are shared
        between repositories, and other tests publish the same bytes)."""
        saved = []

        def tamper(ref, what):
            repository = registry_url.split("/", 3)[3]
            if what == "escape":
                return forge_escape(oci_server, repository, f"{ref.version}-{ref.target}")
            body, headers = fetch(oci_server, f"/v2/{repository}/manifests/{ref.version}-{ref.target}")
            digest = json.loads(body)["layers"][0]["digest"] if what == "file" else headers["Docker-Content-Digest"]
            path = oci_server.blob_path(digest)
            saved.append((path, path.read_bytes()))
            if what == "file":
                data = bytearray(saved[-1][1])
                data[len(data) // 2] ^= 0x20  # one flipped bit, same size
            else:  # still a valid manifest, which the registry serves: it claims another precision
                data = saved[-1][1].replace(b'"dev.buildsys.precision":"fp32"', b'"dev.buildsys.precision":"fp16"')
                assert data != saved[-1][1]
            path.write_bytes(bytes(data))

        yield tamper
        for path, data in saved:
            path.write_bytes(data)

    @pytest.fixture
    def fault_proxy(self, oci_server):
        with FaultProxy(oci_server.address) as proxy:
            yield proxy


@pytest.fixture
def targets(buildsys_project):
    buildsys_project.manifest(TARGETS, files={"model.txt": "Hello OCI\n"})
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    return buildsys_project


def test_cli_publish_list_exists_pull_for_this_host(targets, oci_server, tmp_path):
    url = f"oci://{oci_server.address}/models/hello-{uuid.uuid4().hex[:8]}"
    dry = targets.cli("publish", "manifest.yaml", "--to", url, "--dry-run").assert_ok()
    assert dry.stdout.count("would publish") == 4
    targets.cli("exists", "hello", "1.0.0", "native", "--from", url).assert_error(1)
    out = targets.cli("publish", "manifest.yaml", "--to", url, "-v").assert_ok()
    assert out.stdout.count("published") == 4 and "sent " in out.stderr
    assert ":1.0.0-native@sha256:" in out.stdout
    again = targets.cli("publish", "manifest.yaml", "--to", url, "--dry-run").assert_ok()
    assert again.stdout.count("unchanged (already published)") == 4
    targets.cli("exists", "hello", "1.0.0", "native", "--from", url).assert_ok()
    listing = targets.cli("list", "hello", "--from", url).assert_ok().stdout
    assert "cuda-sm86.sm89" in listing and "cuda-sm90" in listing and len(listing.splitlines()) == 4
    here = targets.cli("pull", "hello", "1.0.0", "--from", url, "--to", str(tmp_path / "here")).assert_ok()
    assert "selected target 'native'" in here.stderr and (tmp_path / "here" / "native" / "artifact.json").exists()
    for hardware, expected in (("l4", "rtx"), ("h100", "hopper"), ("a100", "portable")):
        got = targets.cli("pull", "hello", "1.0.0", "--hardware", hardware, "--from", url,
                          "--to", str(tmp_path / hardware)).assert_ok()
        assert f"selected target '{expected}'" in got.stderr, got.stderr
        assert [p.name for p in (tmp_path / hardware).iterdir()] == [expected]
    targets.cli("pull", "hello", "2.0.0", "--from", url, "--to", str(tmp_path / "none")).assert_error(
        6, "hello/2.0.0 is not published", "1.0.0")


def test_manifest_layout_media_types_annotations_and_alias(targets, oci_server):
    repository = f"models/layout-{uuid.uuid4().hex[:8]}"
    url = f"oci://{oci_server.address}/{repository}"
    targets.cli("publish", "manifest.yaml", "-t", "rtx", "--to", url, "--alias", "prod").assert_ok()
    body, headers = fetch(oci_server, f"/v2/{repository}/manifests/1.0.0-rtx")
    manifest = json.loads(body)
    record = json.loads((targets.target_dir("hello", "1.0.0", "rtx") / "artifact.json").read_text())
    assert manifest["artifactType"] == "application/vnd.buildsys.artifact.v1"
    assert manifest["config"]["mediaType"] == "application/vnd.buildsys.artifact.config.v1+json"
    config, _ = fetch(oci_server, f"/v2/{repository}/blobs/{manifest['config']['digest']}")
    assert json.loads(config) == record, "the config blob is artifact.json, byte for byte"
    layer, provenance = manifest["layers"]  # the file, then the build's provenance as a layer of its own
    assert provenance["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert provenance["annotations"] == {"org.opencontainers.image.title": "provenance.json"}
    assert layer["mediaType"] == "application/vnd.buildsys.file.primary.v1"
    assert layer["digest"] == "sha256:" + record["files"][0]["sha256"]
    assert layer["annotations"] == {"org.opencontainers.image.title": record["files"][0]["name"],
                                    "dev.buildsys.file.sha256": record["files"][0]["sha256"]}
    notes = manifest["annotations"]
    assert {notes[f"dev.buildsys.{k}"] for k in ("name", "version", "target", "format", "precision", "hardware")} \
        == {"hello", "1.0.0", "rtx", "text.pack", "fp32", "cuda-sm86.sm89"}
    assert notes["dev.buildsys.digest"] == artifact_digest(record) == manifest["config"]["digest"]  # config = canonical record
    assert notes["org.opencontainers.image.version"] == "1.0.0"
    alias_body, alias_headers = fetch(oci_server, f"/v2/{repository}/manifests/prod-rtx")
    assert alias_headers["Docker-Content-Digest"] == headers["Docker-Content-Digest"]
    tags = json.loads(fetch(oci_server, f"/v2/{repository}/tags/list", "application/json")[0])["tags"]
    assert sorted(tags) == ["1.0.0-rtx", "prod-rtx"]
    listing = targets.cli("list", "--from", url).assert_ok().stdout
    assert len(listing.splitlines()) == 1, "an alias tag is not a second version"


def test_pull_by_tag_or_digest_reference(targets, oci_server, tmp_path):
    repository = f"models/pinned-{uuid.uuid4().hex[:8]}"
    url = f"oci://{oci_server.address}/{repository}"
    out = targets.cli("publish", "manifest.yaml", "-t", "native", "-t", "portable", "--to", url,
                      "--alias", "stable").assert_ok().stdout
    digest = next(line for line in out.splitlines() if "/native " in line).split("@")[1]
    targets.cli("pull", "hello", "1.0.0", "native", "--from", f"{url}@{digest}",
                "--to", str(tmp_path / "by-digest")).assert_ok()
    targets.cli("pull", "hello", "1.0.0", "--from", f"{url}:stable-native",
                "--to", str(tmp_path / "by-tag")).assert_ok()
    assert (tmp_path / "by-tag" / "native" / "artifact.json").exists()
    targets.cli("pull", "hello", "1.0.0", "portable", "--from", f"{url}@{digest}",
                "--to", str(tmp_path / "wrong")).assert_error(6, "holds hello/1.0.0/native, not hello/1.0.0/portable")
    targets.cli("publish", "manifest.yaml", "--to", f"{url}@{digest}").assert_error(6, "pinned reference")
    assert not (tmp_path / "wrong").exists()


def test_one_repository_holds_one_model(targets, oci_server, buildsys_project):
    url = f"oci://{oci_server.address}/models/one-{uuid.uuid4().hex[:8]}"
    targets.cli("publish", "manifest.yaml", "-t", "portable", "--to", url).assert_ok()
    targets.write("other.yaml", TARGETS.replace("name: hello", "name: other"))
    targets.cli("build", "other.yaml", "-t", "portable").assert_ok()
    targets.cli("publish", "other.yaml", "-t", "portable", "--to", url).assert_error(
        6, "holds model 'hello', not 'other'", "one repository per model")


def test_credentials_from_the_environment_only(targets, oci_auth_server, tmp_path):
    url = f"oci://{oci_auth_server.address}/models/secret"
    anonymous = {"BUILDSYS_OCI_USERNAME": "", "BUILDSYS_OCI_PASSWORD": "", "DOCKER_CONFIG": str(tmp_path / "none")}
    targets.cli("publish", "manifest.yaml", "-t", "native", "--to", url, env=anonymous).assert_error(
        6, "needs credentials", "BUILDSYS_OCI_USERNAME")
    wrong = {"BUILDSYS_OCI_USERNAME": OCI_USER, "BUILDSYS_OCI_PASSWORD": "not-the-password",
             "DOCKER_CONFIG": str(tmp_path / "none")}
    refused = targets.cli("publish", "manifest.yaml", "-t", "native", "--to", url, env=wrong).assert_error(
        6, f"refused user '{OCI_USER}' from BUILDSYS_OCI_USERNAME")
    assert "not-the-password" not in refused.stdout + refused.stderr
    right = {**wrong, "BUILDSYS_OCI_PASSWORD": OCI_PASSWORD}
    out = targets.cli("publish", "manifest.yaml", "-t", "native", "--to", url, "-v", env=right).assert_ok()
    pulled = targets.cli("pull", "hello", "1.0.0", "native", "--from", url, "--to", str(tmp_path / "got"),
                         env=right).assert_ok()
    targets.cli("list", "--from", url, env=wrong).assert_error(6, "refused")
    targets.cli("publish", "manifest.yaml", "-t", "native",
                "--to", f"oci://{OCI_USER}:{OCI_PASSWORD}@{oci_auth_server.address}/models/secret").assert_error(
        6, "carries a password")
    seen = out.stdout + out.stderr + pulled.stdout + pulled.stderr
    seen += "".join(p.read_text(errors="replace") for p in targets.root.rglob("*") if p.is_file()
                    and p.suffix in (".json", ".lock", ".yaml", ".toml"))
    seen += "".join(p.read_text() for p in (tmp_path / "got").rglob("*.json"))
    assert OCI_PASSWORD not in seen, "the password leaked into output, artifact.json or the lock"
