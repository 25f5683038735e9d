"""What a new user tripped over, kept fixed: files others can read, locks that only change with
the tools a manifest uses, artifacts found from anywhere, a portable import, one manifest per
artifact folder, 'not built' said as such."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from buildsys.testing import ProjectDir

HELLO = """\
schema: 1
name: hello
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
  native:     {format: text.bin, hardware: cpu}
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def hello(buildsys_project: ProjectDir) -> ProjectDir:
    buildsys_project.manifest(HELLO, files={"model.txt": "Hello, world.\n"})
    return buildsys_project


def test_metadata_is_as_readable_as_the_artifacts_beside_it(hello):
    old = os.umask(0o022)
    try:
        hello.cli("build", "manifest.yaml").assert_ok()
    finally:
        os.umask(old)
    directory = hello.target_dir("hello", "1.0.0", "normalized")
    assert mode(hello.root / "manifest.lock") == 0o644
    assert mode(directory / "artifact.json") == 0o644 == mode(directory / "provenance.json")
    assert mode(next(p for p in directory.iterdir() if p.suffix == ".txt")) == 0o644


def test_a_plugin_the_manifest_does_not_use_does_not_change_the_lock(hello):
    """With jax installed and then blocked, a text-only manifest's lock is unchanged: the lock
    records the tools of the plugins its nodes use."""
    hello.cli("build", "manifest.yaml").assert_ok()
    lock = (hello.root / "manifest.lock").read_text()
    tools = tomllib.loads(lock)["tools"]
    assert tools and not {"jax", "jaxlib", "torch", "onnx"} & set(tools), tools
    hello.cli("-p", "no:jax", "-p", "no:torch", "build", "manifest.yaml", "--locked").assert_ok()
    assert tomllib.loads((hello.root / "manifest.lock").read_text())["tools"] == tools


def _bare_env(project: ProjectDir) -> dict:
    """The test kit points BUILDSYS_OUT/CACHE_DIR at the project; these tests need them unset."""
    return {k: v for k, v in os.environ.items() if k not in project.env}


def run(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "buildsys", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)


def test_artifacts_and_cache_belong_to_the_project_not_the_current_folder(hello, tmp_path):
    env = _bare_env(hello)
    sub = hello.root / "models"
    sub.mkdir()
    (sub / "manifest.yaml").write_text(HELLO)
    (sub / "model.txt").write_text("Hello, world.\n")
    (hello.root / "buildsys.toml").write_text('[build]\nout = "out"\njobs = 2\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    manifest = str(sub / "manifest.yaml")
    assert run(["build", manifest], elsewhere, env).returncode == 0
    assert (hello.root / "out" / "hello" / "1.0.0" / "normalized" / "artifact.json").is_file()
    assert (hello.root / "out" / ".cache").is_dir() and not (elsewhere / "artifacts").exists()
    verified = run(["verify", manifest], elsewhere, env)
    assert verified.returncode == 0, verified.stderr


def test_not_built_is_its_own_message_and_exit_code(hello, tmp_path):
    hello.cli("build", "manifest.yaml").assert_ok()
    elsewhere = tmp_path / "empty-out"
    result = hello.cli("--out", str(elsewhere), "verify", "manifest.yaml")
    result.assert_error(10, "not built in", "normalized", "native")
    assert "mismatch" not in result.stderr


def test_a_default_registry_comes_from_the_config_file(hello, tmp_path):
    (hello.root / "buildsys.toml").write_text(f'[registry]\nurl = "file:{tmp_path / "reg"}"\n')
    hello.cli("build", "manifest.yaml").assert_ok()
    hello.cli("publish", "manifest.yaml").assert_ok()
    listed = hello.cli("list").assert_ok()
    assert "normalized" in listed.stdout and "native" in listed.stdout


def test_a_bad_setting_names_the_file(hello):
    (hello.root / "buildsys.toml").write_text("[build]\njobs = 0\n")
    hello.cli("build", "manifest.yaml").assert_error(2, "buildsys.toml", "build.jobs")


def test_buildsys_imports_where_fcntl_does_not_exist(tmp_path):
    """Windows has no fcntl: the core must import without it (locks come from filelock)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['fcntl'] = None\n")
    code = ("import importlib, buildsys.cli.app, buildsys.builder, buildsys.fsutil, buildsys.cache\n"
            "from buildsys.fsutil import FileLock\nprint('ok')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_two_manifests_with_one_name_and_version_are_refused(hello):
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    hello.write("twin.yaml", HELLO.replace("normalized: {format: text}", "other: {format: text}"))
    twin = hello.cli("build", "twin.yaml")
    twin.assert_error(2, "holds the artifacts of another manifest named hello 1.0.0", "manifest.yaml")
    assert not hello.target_dir("hello", "1.0.0", "other").exists()
    hello.cli("inspect", "twin.yaml").assert_error(2, "another manifest")
    (hello.root / "manifest.yaml").unlink()  # the other manifest is gone: its folder is free
    hello.cli("build", "twin.yaml").assert_ok()


# -- discoverability ---------------------------------------------------------------------------------


def envelope(result) -> dict:
    import json

    data = json.loads(result.stdout)
    assert set(data) >= {"command", "ok", "exit_code", "result", "error"}, data
    return data


def test_every_json_command_prints_one_envelope(hello, tmp_path):
    hello.cli("build", "manifest.yaml").assert_ok()
    url = f"file:{tmp_path / 'reg'}"
    cases = {("verify", "manifest.yaml"): 0, ("gc", "manifest.yaml", "--dry-run"): 0, ("plugins",): 0,
             ("inspect", "manifest.yaml"): 0, ("host",): 0, ("publish", "manifest.yaml", "--to", url): 0,
             ("list", "--from", url): 0, ("exists", "hello", "1.0.0", "native", "--from", url): 0,
             ("exists", "hello", "1.0.0", "nope", "--from", url): 1,
             ("pull", "hello", "1.0.0", "native", "--from", url, "--to", str(tmp_path / "got")): 0,
             ("options", "text.normalize"): 0, ("build", "manifest.yaml"): 0}
    for args, code in cases.items():
        result = hello.cli(*args, "--json")
        assert result.exit_code == code, (args, result.stderr)
        data = envelope(result)
        assert data["command"] == args[0] and data["ok"] is (code == 0) and data["exit_code"] == code, (args, data)
    listed = envelope(hello.cli("list", "--from", url, "--json"))["result"]
    assert {r["target"] for r in listed} == {"normalized", "native"} and all(r["digest"] for r in listed)


def test_an_error_under_json_is_an_envelope_too(hello, tmp_path):
    result = hello.cli("--out", str(tmp_path / "nothing"), "verify", "manifest.yaml", "--json")
    data = envelope(result)
    assert result.exit_code == 10 and data["ok"] is False and data["exit_code"] == 10
    assert data["error"]["type"] == "NotBuilt" and "not built" in data["error"]["message"]


def test_a_failed_build_under_json_says_what_did_succeed(hello):
    hello.write("broken.yaml", HELLO.replace("name: hello", "name: broken").replace(
        "native:     {format: text.bin, hardware: cpu}",
        "native:     {format: text.bin, hardware: cpu}\n  stats: {format: text.stats, options: {text.wordcount: {fail: true}}}"))
    result = hello.cli("build", "broken.yaml", "--keep-going")
    data = envelope(result)
    assert result.exit_code == 1 and data["error"]["type"] == "BuildFailed"
    statuses = {n.split("#")[0]: o["status"] for n, o in data["result"]["nodes"].items()}
    assert statuses["text.wordcount"] == "failed" and statuses["text.normalize"] == "built"


def test_host_says_cpu_model_cores_and_memory(buildsys_project):
    info = envelope(buildsys_project.cli("host", "--json").assert_ok())["result"]
    assert info["cpus"] >= 1 and info["memory_mb"] > 0 and isinstance(info["cpu_model"], str)
    text = buildsys_project.cli("host").assert_ok().stdout
    assert f"{info['cpus']} cores" in text and "GiB" in text


def test_the_schema_describes_every_stage_option_and_validates_the_examples(buildsys_project):
    import json

    import jsonschema
    import yaml

    schema = json.loads(buildsys_project.cli("schema").assert_ok().stdout)
    target = schema["$defs"]["Target"]["properties"]
    assert "onnx.export" in target["options"]["properties"] and "onnx" in target["format"]["enum"]
    opset = schema["$defs"]["options.onnx.export"]["properties"]["opset"]
    assert opset["description"] and opset["default"] == "auto"
    manifests = Path(__file__).resolve().parents[2] / "manifests"
    for path in sorted(manifests.glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = yaml.safe_load((manifests / "cnn.yaml").read_text())
    bad["targets"]["portable"] = {"format": "onnx", "options": {"onnx.export": {"opset": "latest"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_options_lists_and_describes_stage_options(buildsys_project):
    listing = buildsys_project.cli("options").assert_ok().stdout
    assert "onnx.export" in listing and "text.normalize" in listing
    described = buildsys_project.cli("options", "onnx.export").assert_ok().stdout
    assert "opset:" in described and 'default "auto"' in described and "consumers" in described
    buildsys_project.cli("options", "onnx.exprot").assert_error(2, "did you mean 'onnx.export'")


# -- feedback ----------------------------------------------------------------------------------------


def test_progress_names_targets_and_a_ci_log_hears_from_every_running_node(hello):
    hello.write("slow.yaml", HELLO.replace("name: hello", "name: slow").replace(
        "native:     {format: text.bin, hardware: cpu}",
        "stats:      {format: text.stats, options: {text.wordcount: {delay: 2}}}"))
    result = hello.cli("build", "slow.yaml", env={"BUILDSYS_HEARTBEAT_SECONDS": "0.5"}).assert_ok()
    assert any(line.strip().startswith("running text.wordcount#") and "(stats)" in line
               for line in result.stderr.splitlines()), result.stderr
    assert any("built text.normalize#" in line and "(normalized" in line for line in result.stderr.splitlines())


def test_a_host_compiled_artifact_records_its_microarchitecture(hello):
    """cpu-x86_64-avx512 lumps CPUs together; what a host-compiled artifact may use is its build
    host's microarchitecture (archspec's name and features), recorded beside it."""
    import archspec.cpu

    hello.cli("build", "manifest.yaml").assert_ok()
    native = json.loads((hello.target_dir("hello", "1.0.0", "native") / "artifact.json").read_text())
    portable = json.loads((hello.target_dir("hello", "1.0.0", "normalized") / "artifact.json").read_text())
    recorded = native["meta"]["cpu_target"]
    assert recorded["microarch"] == archspec.cpu.host().name == native["host"]["microarch"]
    assert set(recorded["features"]) == set(archspec.cpu.host().features)
    assert "cpu_target" not in portable["meta"], "an artifact for any hardware carries no CPU target"
    host = json.loads(hello.cli("host", "--json").assert_ok().stdout)["result"]
    assert host["microarch"] == recorded["microarch"]
