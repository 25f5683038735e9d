"""Real registry servers on 127.0.0.1, started once per test session and stopped by process id.

Every test here carries the ``registry`` marker. A server whose software is missing skips its
tests on a developer's machine, and fails them where ``CI`` or ``BUILDSYS_REQUIRE_REGISTRIES``
is set: CI must run every registry test, never skip one silently. The software:
``pip install 'buildsys[mlflow,oci]' 'mlflow[auth]'`` and ``apt-get install -y docker-registry``.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from registry_credentials import MLFLOW_PASSWORD, MLFLOW_USER, OCI_HTPASSWD


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        name = os.path.basename(str(item.fspath))
        if str(item.fspath).startswith(here) and "executor" not in name and "triton" not in name:
            item.add_marker(pytest.mark.registry)


def require(ok: bool, what: str) -> None:
    """Skip, or in CI fail, when a registry server's software is missing."""
    if ok:
        return
    if os.environ.get("CI") or os.environ.get("BUILDSYS_REQUIRE_REGISTRIES"):
        pytest.fail(f"{what}; CI (or BUILDSYS_REQUIRE_REGISTRIES) runs every registry test", pytrace=False)
    pytest.skip(what)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="session")
def oci_server(tmp_path_factory):
    """docker-registry without authentication."""
    from buildsys_oci.testing import INSTALL, LocalOciRegistry, find_binary

    require(find_binary() is not None, f"docker-registry is not installed ({INSTALL})")
    require(_has("oras"), "oras is not installed (pip install 'buildsys[oci]')")
    with LocalOciRegistry(tmp_path_factory.mktemp("oci")) as server:
        yield server


@pytest.fixture(scope="session")
def oci_auth_server(tmp_path_factory):
    """docker-registry with htpasswd (basic) authentication: OCI_USER / OCI_PASSWORD."""
    from buildsys_oci.testing import INSTALL, LocalOciRegistry, find_binary

    require(find_binary() is not None, f"docker-registry is not installed ({INSTALL})")
    require(_has("oras"), "oras is not installed (pip install 'buildsys[oci]')")
    with LocalOciRegistry(tmp_path_factory.mktemp("oci-auth"), htpasswd=OCI_HTPASSWD) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_servers(tmp_path_factory):
    """Two mlflow servers started side by side: without authentication (fast: the basic-auth
    app hashes the password on every request), and with the basic-auth app."""
    from buildsys_mlflow.testing import INSTALL, LocalMlflowServer

    require(_has("mlflow") and _has("flask_wtf"), f"mlflow with its auth app is not installed ({INSTALL})")
    servers = {"plain": LocalMlflowServer(tmp_path_factory.mktemp("mlflow")),
               "auth": LocalMlflowServer(tmp_path_factory.mktemp("mlflow-auth"), auth=(MLFLOW_USER, MLFLOW_PASSWORD))}
    try:
        for server in servers.values():
            server.launch()
        for server in servers.values():
            server.wait(180)
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_servers):
    """mlflow server without authentication."""
    return mlflow_servers["plain"]


@pytest.fixture(scope="session")
def mlflow_auth_server(mlflow_servers):
    """mlflow server with the basic-auth app: MLFLOW_USER / MLFLOW_PASSWORD."""
    return mlflow_servers["auth"]


@pytest.fixture
def mlflow_auth_env(mlflow_auth_server, monkeypatch):
    """The authenticating MLflow server, its credentials in the environment (this process's and the CLI's)."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", MLFLOW_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", MLFLOW_PASSWORD)
    return mlflow_auth_server
