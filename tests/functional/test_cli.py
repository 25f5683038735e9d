"""The CLI surface: plan formats, schema, host, plugins, publish/pull/list, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_plan_text_shows_status_and_refusals(hello):
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text() + "  gpu: {format: text.bin, hardware: h100}\n")
    result = hello.cli("plan", "manifest.yaml")
    assert result.exit_code == 3
    assert "will build text.normalize#" in result.stdout
    assert "refused    target 'gpu'" in result.stdout and "needs cuda-sm90" in result.stdout
    hello.cli("build", "manifest.yaml", "-k")
    after = hello.cli("plan", "manifest.yaml", "-t", "ascii").assert_ok()
    assert "cached     text.ascii#" in after.stdout and "2 cached, 0 to build" in after.stdout


def test_plan_json_dot_mermaid(hello):
    view = json.loads(hello.cli("plan", "manifest.yaml", "--format", "json").assert_ok().stdout)
    stages = [n["stage"] for n in view["nodes"]]
    assert stages[0] == "source" and stages.count("text.normalize") == 2 and len(stages) == 7
    assert all(n["status"] in ("source", "will build") for n in view["nodes"])
    dot = hello.cli("plan", "manifest.yaml", "--format", "dot").assert_ok().stdout
    assert dot.startswith("digraph buildsys {") and '"target:native"' in dot and "->" in dot
    mermaid = hello.cli("plan", "manifest.yaml", "--format", "mermaid").assert_ok().stdout
    assert mermaid.startswith("flowchart LR") and "-->" in mermaid


def test_schema_prints_json_schema(buildsys_project):
    schema = json.loads(buildsys_project.cli("schema").assert_ok().stdout)
    assert schema["title"] == "buildsys manifest" and "targets" in schema["properties"]


def test_host_json(buildsys_project):
    info = json.loads(buildsys_project.cli("host", "--json").assert_ok().stdout)["result"]
    assert info["tags"][0].startswith("cpu-") and isinstance(info["gpus"], list)


def test_plugins_lists_usability(buildsys_project):
    out = buildsys_project.cli("plugins").assert_ok().stdout
    assert "text.spellcheck" in out and "UNUSABLE" in out and "pip install pyspellchecker" in out
    assert "text.normalize" in out and "file" in out and "local" in out


def test_plugin_command_and_blocking(buildsys_project):
    env = {"PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = buildsys_project.cli("-p", "fixture_plugins.extra_command", "hello-plugin", env=env)
    assert result.assert_ok().stdout.strip() == "hello from a plugin command"
    blocked = buildsys_project.cli("-p", "no:text", "plugins").assert_ok()
    assert "text.normalize" not in blocked.stdout


def test_terminal_reporter_is_a_default_plugin_that_can_be_blocked(hello):
    """Build progress comes from the builtin 'terminal' plugin, registered through
    buildsys_configure; -p no:terminal blocks it, and the build itself is unchanged."""
    shown = hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    assert "built text.normalize#" in shown.stderr
    silent = hello.cli("-p", "no:terminal", "build", "manifest.yaml", "-t", "normalized").assert_ok()
    assert "text.normalize#" not in silent.stderr and silent.nodes("cached")  # the build itself reports as before
    again = hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    assert "cached text.normalize#" in again.stderr


def test_duplicate_stage_is_one_line_error(hello):
    env = {"PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = hello.cli("-p", "fixture_plugins.dupe_stage", "build", "manifest.yaml", env=env)
    result.assert_error(8, "stage 'text.normalize' is registered by both plugin 'text' and plugin 'fixture_plugins.dupe_stage'")
    assert not hello.out.exists()


def test_bad_manifests_exit_2_and_write_nothing(hello):
    cases = {
        "malformed.yaml": "schema: 1\nname: x\n  version: 2\n",
        "unknown.yaml": "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\ntargets: {a: {format: text}}\nextra: 1\n",
        "wrongtype.yaml": "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\ntargets: {a: {format: text, precision: 8}}\n",
        "missing.yaml": "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: nope/model.txt}\ntargets: {a: {format: text}}\n",
        "alias.yaml": "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\ntargets: {a: {format: text.pack, hardware: h101}}\n",
        "traversal.yaml": "schema: 1\nname: ../x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\ntargets: {a: {format: text}}\n",
    }
    for name, text in cases.items():
        hello.write(name, text)
        result = hello.cli("build", name)
        result.assert_error(2, f"{name}:")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not hello.out.exists()
    assert not any(p.suffix == ".lock" for p in hello.root.iterdir())


def test_unknown_format_and_cycle_are_refused(hello):
    hello.write("fmt.yaml", "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\ntargets: {a: {format: txet}}\n")
    hello.cli("build", "fmt.yaml").assert_error(3, "fmt.yaml:5:", "unknown target format 'txet'", "did you mean")
    hello.write("cycle.yaml", "schema: 1\nname: x\nversion: '1'\nmodel: {framework: text, entrypoint: model.txt}\n"
                "targets:\n  a: {format: text, from: b}\n  b: {format: text, from: a}\n")
    hello.cli("build", "cycle.yaml").assert_error(3, "cycle: a -> b -> a")
    assert not hello.out.exists()


def test_no_manifest(buildsys_project):
    buildsys_project.cli("build", "nothere.yaml").assert_error(2, "no manifest at nothere.yaml")


def test_publish_pull_list_file_registry(hello, tmp_path):
    hello.cli("build", "manifest.yaml").assert_ok()
    registry = f"file:{tmp_path / 'registry'}"
    out = hello.cli("publish", "manifest.yaml", "--to", registry).assert_ok().stdout
    assert out.count("published") == 6
    again = hello.cli("publish", "manifest.yaml", "-t", "ascii", "--to", registry).assert_ok().stdout
    assert "unchanged (already published)" in again
    listing = hello.cli("list", "--from", registry).assert_ok().stdout
    assert len(listing.strip().splitlines()) == 6 and "native" in listing
    pulled = hello.cli("pull", "hello", "1.0.0", "native", "--from", registry, "--to", str(tmp_path / "got")).assert_ok()
    assert "checksums verified" in pulled.stdout
    record = json.loads((tmp_path / "got" / "native" / "artifact.json").read_text())
    assert (tmp_path / "got" / "native" / record["files"][0]["name"]).exists()


def test_publish_refuses_changed_version_and_edited_files(hello, tmp_path):
    registry = f"file:{tmp_path / 'registry'}"
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    hello.cli("publish", "manifest.yaml", "-t", "normalized", "--to", registry).assert_ok()
    hello.write("model.txt", "different model, same version\n")
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    hello.cli("publish", "manifest.yaml", "-t", "normalized", "--to", registry).assert_error(
        6, "already published with digest", "bump the manifest's version")
    directory = hello.target_dir("hello", "1.0.0", "normalized")
    victim = directory / json.loads((directory / "artifact.json").read_text())["files"][0]["name"]
    victim.write_text("edited by hand\n")
    hello.cli("publish", "manifest.yaml", "-t", "normalized", "--to", f"file:{tmp_path / 'other'}").assert_error(
        5, "does not match", victim.name)
    assert not (tmp_path / "other" / "hello").exists()


def test_pull_refuses_traversal_and_damage(hello, tmp_path):
    registry = tmp_path / "registry"
    hello.cli("pull", "..", "1", "a", "--from", f"file:{registry}", "--to", str(tmp_path / "x")).assert_error(2, "not a safe name")
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    hello.cli("publish", "manifest.yaml", "-t", "normalized", "--to", f"file:{registry}").assert_ok()
    stored = registry / "hello" / "1.0.0" / "normalized"
    victim = stored / json.loads((stored / "artifact.json").read_text())["files"][0]["name"]
    victim.chmod(0o644)
    victim.write_text("bit rot\n")
    hello.cli("pull", "hello", "1.0.0", "normalized", "--from", f"file:{registry}", "--to", str(tmp_path / "y")).assert_error(
        5, "do not match their checksums")
    assert not (tmp_path / "y" / "normalized").exists()


def test_help_teaches(buildsys_project):
    out = buildsys_project.cli("build", "--help").assert_ok().stdout
    assert "--keep-going" in out and "--locked" in out and "Exit codes" in out
