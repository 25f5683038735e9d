"""The MLflow registry plugin against a real ``mlflow server`` (sqlite, basic auth) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_credentials import MLFLOW_PASSWORD, MLFLOW_USER

from buildsys import artifact_digest
from buildsys.testing import FaultProxy, RegistryContract

TARGETS = """
schema: 1
name: {name}
version: 2.1.0
model: {{framework: text, entrypoint: model.txt}}
targets:
  portable: {{format: text}}
  native:   {{format: text.bin, hardware: cpu}}
  rtx:      {{format: text.pack, hardware: [sm86, sm89]}}
"""


def client(server):
    from mlflow import MlflowClient

    uri = f"http://{server.address}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def drop_models(server, *names: str) -> None:
    from mlflow.exceptions import MlflowException

    for name in names:
        try:
            client(server).delete_registered_model(name)
        except MlflowException:
            pass


def stored_dir(server, name: str, version: str, target: str) -> Path:
    """The folder on the server's disk that holds a model version's files."""
    [mv] = [v for v in client(server).search_model_versions(f"name='{name}'")
            if (v.tags.get("buildsys.version"), v.tags.get("buildsys.target")) == (version, target)]
    return server.artifacts / mv.source.split("mlflow-artifacts:/", 1)[1]


class TestMlflowRegistry(RegistryContract):
    retry_after_unsupported = ("MLflow's REST client turns a 429/503 answer into an exception without its headers "
                               "(urllib3 raises on the status before MLflow sees the response)")

    @pytest.fixture
    def registry_url(self, mlflow_server):
        drop_models(mlflow_server, "contract", "nobody")
        yield f"{mlflow_server.url}?experiment=contract"
        drop_models(mlflow_server, "contract", "nobody")

    @pytest.fixture
    def tamper(self, mlflow_server):
        def tamper(ref, what):
            stored = stored_dir(mlflow_server, ref.name, ref.version, ref.target)
            if what == "file":
                victim = stored / json.loads((stored / "artifact.json").read_text())["files"][0]["name"]
                data = bytearray(victim.read_bytes())
                data[len(data) // 2] ^= 0x20
                victim.write_bytes(bytes(data))
            elif what == "metadata":  # artifact.json claims another precision: the file list is unchanged
                meta = stored / "artifact.json"
                meta.write_text(meta.read_text().replace('"precision": "fp32"', '"precision": "fp16"', 1))
            else:  # escape: a forged listing, and the version's digest tag made to agree
                meta = stored / "artifact.json"
                record = json.loads(meta.read_text())
                record["files"][0]["name"] = "../../../../escaped.bin"
                meta.write_text(json.dumps(record))
                [mv] = [v for v in client(mlflow_server).search_model_versions(f"name='{ref.name}'")
                        if (v.tags.get("buildsys.version"), v.tags.get("buildsys.target")) == (ref.version, ref.target)]
                client(mlflow_server).set_model_version_tag(ref.name, mv.version, "buildsys.digest",
                                                            artifact_digest(record))

        return tamper

    @pytest.fixture
    def fault_proxy(self, mlflow_server):
        with FaultProxy(mlflow_server.address) as proxy:
            yield proxy


@pytest.fixture
def targets(buildsys_project, mlflow_server, request):
    name = f"hello-{request.node.name.split('_')[1]}"
    drop_models(mlflow_server, name)
    buildsys_project.manifest(TARGETS.format(name=name), files={"model.txt": "Hello MLflow\n"})
    buildsys_project.cli("build", "manifest.yaml").assert_ok()
    yield buildsys_project, name
    drop_models(mlflow_server, name)


def test_cli_versions_tags_alias_and_logged_models(targets, mlflow_server, tmp_path):
    project, name = targets
    url = mlflow_server.url
    project.cli("publish", "manifest.yaml", "--to", url, "--dry-run").assert_ok()
    assert client(mlflow_server).search_model_versions(f"name='{name}'") == [], "--dry-run registered something"
    out = project.cli("publish", "manifest.yaml", "--to", url, "--alias", "prod").assert_ok().stdout
    assert out.count("published") == 3 and f"models:/{name}/" in out
    versions = client(mlflow_server).search_model_versions(f"name='{name}'")
    assert len(versions) == 3, "one model version per (version, target)"
    rtx = next(v for v in versions if v.tags["buildsys.target"] == "rtx")
    record = json.loads((project.target_dir(name, "2.1.0", "rtx") / "artifact.json").read_text())
    assert {k: rtx.tags[f"buildsys.{k}"] for k in ("name", "version", "format", "precision", "hardware")} == {
        "name": name, "version": "2.1.0", "format": "text.pack", "precision": "fp32", "hardware": "cuda-sm86.sm89"}
    assert rtx.tags["buildsys.digest"] == artifact_digest(record) and rtx.tags["buildsys.buildsys_version"] == record["buildsys"]
    assert client(mlflow_server).get_model_version_by_alias(name, "prod-rtx").version == rtx.version
    stored = stored_dir(mlflow_server, name, "2.1.0", "rtx")
    assert sorted(p.name for p in stored.iterdir()) == sorted([record["files"][0]["name"], "artifact.json", "provenance.json"])
    [logged] = [m for m in client(mlflow_server).search_logged_models(
        experiment_ids=[client(mlflow_server).get_experiment_by_name("buildsys").experiment_id])
        if m.model_id in rtx.source]
    assert str(logged.status).endswith("READY")
    again = project.cli("publish", "manifest.yaml", "--to", url).assert_ok().stdout
    assert again.count("unchanged (already published)") == 3
    got = project.cli("pull", name, "2.1.0", "--hardware", "rtx4090", "--from", url,
                      "--to", str(tmp_path / "got")).assert_ok()
    assert "selected target 'rtx'" in got.stderr and (tmp_path / "got" / "rtx" / "artifact.json").exists()
    project.cli("exists", name, "2.1.0", "native", "--from", url).assert_ok()
    project.cli("exists", name, "9.9.9", "native", "--from", url).assert_error(1)


def test_credentials_come_from_the_environment(buildsys_project, mlflow_auth_env, tmp_path):
    project, name, mlflow_server = buildsys_project, "hello-secret", mlflow_auth_env
    project.manifest(TARGETS.format(name=name), files={"model.txt": "Hello MLflow\n"})
    project.cli("build", "manifest.yaml", "-t", "native").assert_ok()
    url = mlflow_server.url
    wrong = project.cli("publish", "manifest.yaml", "-t", "native", "--to", url,
                        env={"MLFLOW_TRACKING_PASSWORD": "not-the-password"}).assert_error(
        6, "refused the credentials", "MLFLOW_TRACKING_USERNAME")
    assert "not-the-password" not in wrong.stdout + wrong.stderr
    project.cli("list", "--from", url, env={"MLFLOW_TRACKING_USERNAME": "", "MLFLOW_TRACKING_PASSWORD": "",
                                            "HOME": str(tmp_path)}).assert_error(6, "refused the credentials")
    project.cli("publish", "manifest.yaml", "-t", "native",
                "--to", f"mlflow+http://{MLFLOW_USER}:{MLFLOW_PASSWORD}@{mlflow_server.address}").assert_error(
        6, "carries a password")
    ok = project.cli("publish", "manifest.yaml", "-t", "native", "--to", url).assert_ok()
    pulled = project.cli("pull", name, "2.1.0", "native", "--from", url, "--to", str(tmp_path / "got")).assert_ok()
    seen = ok.stdout + ok.stderr + pulled.stdout + pulled.stderr
    seen += "".join(p.read_text(errors="replace") for p in project.root.rglob("*")
                    if p.is_file() and p.suffix in (".json", ".lock", ".yaml", ".toml"))
    seen += "".join(p.read_text() for p in (tmp_path / "got").rglob("*.json"))
    seen += "".join(json.dumps(v.tags) for v in client(mlflow_server).search_model_versions(f"name='{name}'"))
    assert MLFLOW_PASSWORD not in seen, "the password leaked into output, artifact.json, the lock or the tags"


def test_unknown_experiment_server_and_version_errors(targets, mlflow_server, tmp_path):
    project, name = targets
    project.cli("pull", name, "2.1.0", "native", "--from", mlflow_server.url,
                "--to", str(tmp_path / "x")).assert_error(6, f"{name}/2.1.0/native is not in")
    project.cli("list", "--from", "mlflow+http://127.0.0.1:9", "--retries", "1").assert_error(
        6, "cannot reach MLflow at http://127.0.0.1:9", "after 2 attempts")
    assert not (tmp_path / "x").exists()
