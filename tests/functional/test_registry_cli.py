"""publish/pull/list/exists options on the file registry, and what the registry plugins import."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

TARGETS = """
schema: 1
name: hello
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  portable: {format: text}
  native:   {format: text.bin, hardware: cpu}
  rtx:      {format: text.pack, hardware: [sm86, sm89]}
"""
HEAVY_CLIENTS = {"mlflow", "oras", "requests"}


def test_dry_run_exists_and_host_selection(buildsys_project, tmp_path):
    project = buildsys_project
    project.manifest(TARGETS, files={"model.txt": "Hello\n"})
    project.cli("build", "manifest.yaml").assert_ok()
    url = f"file:{tmp_path / 'registry'}"
    dry = project.cli("publish", "manifest.yaml", "--to", url, "--dry-run").assert_ok()
    assert dry.stdout.count("would publish") == 3 and not (tmp_path / "registry").exists()
    project.cli("exists", "hello", "1.0.0", "native", "--from", url).assert_error(1)
    project.cli("publish", "manifest.yaml", "--to", url).assert_ok()
    project.cli("exists", "hello", "1.0.0", "native", "--from", url).assert_ok()
    listing = project.cli("list", "hello", "--from", url).assert_ok().stdout
    assert "cuda-sm86.sm89" in listing and len(listing.splitlines()) == 3
    project.cli("pull", "hello", "1.0.0", "--from", url, "--to", str(tmp_path / "here"), "--dry-run").assert_ok()
    assert not (tmp_path / "here").exists()
    here = project.cli("pull", "hello", "1.0.0", "--from", url, "--to", str(tmp_path / "here")).assert_ok()
    assert "selected target 'native'" in here.stderr
    l4 = project.cli("pull", "hello", "1.0.0", "--hardware", "l4", "--from", url, "--to", str(tmp_path / "l4"))
    assert "selected target 'rtx'" in l4.assert_ok().stderr
    project.cli("pull", "hello", "1.0.0", "--hardware", "cpu-aarch64", "--from", url,
                "--to", str(tmp_path / "arm")).assert_ok()
    assert [p.name for p in (tmp_path / "arm").iterdir()] == ["portable"]
    project.cli("pull", "hello", "1.0.0", "--hardware", "h100", "--hardware", "l4", "--from", url,
                "--to", str(tmp_path / "two")).assert_ok()
    project.cli("pull", "hello", "3.0.0", "--from", url, "--to", str(tmp_path / "none")).assert_error(
        6, "hello/3.0.0 is not published", "1.0.0")
    project.cli("pull", "hello", "1.0.0", "--hardware", "nvidia9000", "--from", url,
                "--to", str(tmp_path / "none")).assert_error(2, "unknown hardware 'nvidia9000'")
    assert not (tmp_path / "none").exists()


def test_refusals(buildsys_project, tmp_path):
    project = buildsys_project
    project.manifest(TARGETS, files={"model.txt": "Hello\n"})
    project.cli("build", "manifest.yaml", "-t", "portable").assert_ok()
    url = f"file:{tmp_path / 'registry'}"
    project.cli("publish", "manifest.yaml", "-t", "portable", "--to", url, "--alias", "prod").assert_error(
        6, "file:// registries have no aliases")
    project.cli("publish", "manifest.yaml", "-t", "portable", "--to", "oci://me:pw@127.0.0.1:9/models/x").assert_error(
        6, "carries a password")
    project.cli("list", "--from", url, "--retries", "99").assert_error(2, "--retries")
    project.cli("list", "--from", url, env={"BUILDSYS_REGISTRY_RETRIES": "many"}).assert_error(
        6, "BUILDSYS_REGISTRY_RETRIES")
    project.cli("list", "--from", "ftp://127.0.0.1/x").assert_error(2, "unknown registry scheme 'ftp'", "oci+http")
    project.cli("list", "--from", "oci://127.0.0.1:9/Bad_Repo").assert_error(6, "no valid repository")
    project.cli("exists", "..", "1", "a", "--from", url).assert_error(2, "not a safe name")
    project.cli("list", "--from", "mlflow:", env={"MLFLOW_TRACKING_URI": ""}).assert_error(
        6, "needs MLFLOW_TRACKING_URI")


def test_help_and_plugins_import_no_registry_client(buildsys_project, tmp_path):
    """``--help`` and ``buildsys plugins`` list the mlflow and oci registries without importing
    mlflow, oras or requests: those load when a registry is first used."""
    outputs = {}
    for args in (["--help"], ["plugins"], ["publish", "--help"]):
        trace = tmp_path / f"{args[0]}.jsonl"
        outputs[args[0]] = buildsys_project.cli(*args, env={"BUILDSYS_TRACE_IMPORTS": str(trace)}).assert_ok().stdout
        modules = {m.split(".")[0] for line in trace.read_text().splitlines() for m in json.loads(line)["modules"]}
        assert modules & HEAVY_CLIENTS == set(), f"buildsys {' '.join(args)} imported {modules & HEAVY_CLIENTS}"
    assert all(scheme in outputs["plugins"] for scheme in ("mlflow+http", "mlflow+https", "oci", "oci+http"))
    assert "oci://host:port/repository" in outputs["publish"]


def test_registry_plugin_modules_import_with_warnings_as_errors():
    import buildsys_mlflow
    import buildsys_oci

    names = []
    for package in (buildsys_mlflow, buildsys_oci):
        root = Path(package.__file__).parent
        names += [f"{package.__name__}.{p.stem}" if p.stem != "__init__" else package.__name__
                  for p in sorted(root.glob("*.py"))]
    assert {"buildsys_oci.client", "buildsys_mlflow.errors", "buildsys_mlflow.testing"} <= set(names)
    if importlib.util.find_spec("oras") is None:  # the one module that imports its client at the top
        names.remove("buildsys_oci.client")
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code, *names], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
