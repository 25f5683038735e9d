"""plan --explain / build --explain: what changed since the lockfile, per node that will build."""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib

HELLO = """\
schema: 1
name: hello
version: 1.0.0
model: {{framework: text, entrypoint: model.txt}}
targets:
  normalized: {{format: text{options}}}
  native:     {{format: text.bin, hardware: cpu}}
"""


def explained(project, *args) -> dict[str, list[str]]:
    view = json.loads(project.cli("plan", "manifest.yaml", "--explain", "--format", "json", *args).assert_ok().stdout)
    return {n["id"].split("#")[0]: [re.sub(r"#[0-9a-f]+", "", w) for w in n["why"]] for n in view["nodes"] if n.get("why")}


def test_each_node_that_will_build_says_why(buildsys_project):
    project = buildsys_project
    project.manifest(HELLO.format(options=""), files={"model.txt": "Hello, world.\n"})
    assert explained(project) == {"text.normalize": ["no lockfile yet: nothing was built from this manifest"],
                                  "text.compile": ["no lockfile yet: nothing was built from this manifest"]}
    project.cli("build", "manifest.yaml").assert_ok()
    assert explained(project) == {}, "everything cached: nothing to explain"

    (project.root / "model.txt").write_text("Hello, there.\n")
    assert explained(project) == {"text.normalize": ["the model's source changed: model.txt edited"],
                                  "text.compile": ["input text.normalize will build"]}
    project.cli("build", "manifest.yaml").assert_ok()

    project.manifest(HELLO.format(options=", options: {text.normalize: {lowercase: true}}"))
    why = explained(project)
    assert why["text.normalize"] == ["option text.normalize.lowercase: False -> True"], why
    assert "text.compile" not in why, "the native target's chain did not change"

    project.manifest(HELLO.format(options=""))
    shutil.rmtree(project.root / "artifacts" / ".cache" / "ac")
    assert set(explained(project)["text.normalize"]) == {
        "its action is unchanged, but the cache has no entry for it (cleared, gc'd or damaged)"}
    text = project.cli("plan", "manifest.yaml", "--explain").assert_ok().stdout
    assert "because its action is unchanged, but the cache has no entry" in text
    result = project.cli("build", "manifest.yaml", "--explain").assert_ok()
    explanation = result.stderr.split("[1/")[0]  # printed before the build starts
    assert "will build text.normalize#" in explanation and "the cache has no entry for it" in explanation
    assert "nothing to build: every node is cached" in project.cli("build", "manifest.yaml", "--explain").assert_ok().stderr


VERSIONED_PLUGIN = '''
from pathlib import Path
import pluggy
from buildsys import Requirement, SourceSpec

hookimpl = pluggy.HookimplMarker("buildsys")


@hookimpl
def buildsys_register_sources():
    """A text model loaded through a library (as transformers loads a Hugging Face model): another
    version of it may make another model from the same files."""
    return [SourceSpec(framework="versioned", kind="text.source", requires=(Requirement("fakemodellib"),),
                       fingerprint=lambda model, root: [Path(root) / model.entrypoint],
                       load=lambda model, root: (Path(root) / model.entrypoint).read_text())]
'''


def test_a_new_version_of_the_library_the_source_loads_with_rebuilds_and_says_so(buildsys_project):
    project = buildsys_project
    project.write("versioned_source.py", VERSIONED_PLUGIN)
    site = project.root / "site"

    def install(version: str) -> None:
        shutil.rmtree(site, ignore_errors=True)
        (site / f"fakemodellib-{version}.dist-info").mkdir(parents=True)
        (site / f"fakemodellib-{version}.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fakemodellib\nVersion: {version}\n")

    env = {**project.env, "PYTHONPATH": os.pathsep.join([str(project.root), str(site), os.environ.get("PYTHONPATH", "")])}
    project.manifest(HELLO.replace("framework: text", "framework: versioned").format(options=""),
                     files={"model.txt": "Hello, world.\n"})
    install("1.0")
    project.cli("-p", "versioned_source", "build", "manifest.yaml", env=env).assert_ok()
    plan = project.cli("-p", "versioned_source", "plan", "manifest.yaml", "--explain", env=env).assert_ok().stdout
    assert "will build" not in plan, plan

    install("2.0")  # the same files, another library: the model may differ, so it is built again
    view = json.loads(project.cli("-p", "versioned_source", "plan", "manifest.yaml", "--explain", "--format", "json",
                                  env=env).assert_ok().stdout)
    why = {n["id"].split("#")[0]: n["why"] for n in view["nodes"] if n.get("why")}
    assert why["text.normalize"] == ["the model's source changed: fakemodellib 1.0 -> 2.0"], why
    project.cli("-p", "versioned_source", "build", "manifest.yaml", env=env).assert_ok()
    lock = tomllib.loads((project.root / "manifest.lock").read_text())
    [source] = [n for n in lock["nodes"].values() if n["stage"] == "source"]
    assert source["tools"] == {"fakemodellib": "2.0"}


DESCRIBED_PLUGIN = '''
from pathlib import Path
import pluggy
from buildsys import SourceSpec

hookimpl = pluggy.HookimplMarker("buildsys")


def describe(model, root):
    """Reads the model's file (as the Hugging Face source reads a config): each call is logged."""
    with open(Path(root) / "described.log", "a") as log:
        log.write("described\\n")
    return model.model_copy(update={"task": "from-" + (Path(root) / model.entrypoint).read_text().split()[0]})


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="described", kind="text.source", describe=describe,
                       fingerprint=lambda model, root: [Path(root) / model.entrypoint],
                       load=lambda model, root: (Path(root) / model.entrypoint).read_text())]
'''


def test_a_description_is_remembered_until_the_models_files_change(buildsys_project, monkeypatch):
    from buildsys.plugins import PluginConfig
    from buildsys.project import Project

    project = buildsys_project
    project.write("described_source.py", DESCRIBED_PLUGIN)
    env = {**project.env, "PYTHONPATH": os.pathsep.join([str(project.root), os.environ.get("PYTHONPATH", "")])}
    project.manifest(HELLO.replace("framework: text", "framework: described").format(options=""),
                     files={"model.txt": "Hello, world.\n"})
    log = project.root / "described.log"

    def calls() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    project.cli("-p", "described_source", "build", "manifest.yaml", env=env).assert_ok()
    first = calls()
    assert first >= 1
    for _ in range(2):  # a no-op rebuild reads the description back: describe is not called
        assert "will build" not in project.cli("-p", "described_source", "plan", "manifest.yaml", "--explain",
                                               env=env).assert_ok().stdout
    assert calls() == first
    monkeypatch.syspath_prepend(str(project.root))
    opened = Project(project.root / "manifest.yaml", PluginConfig(extra=("described_source",)))
    assert opened.manifest.model.task == "from-Hello," and calls() == first, "the remembered block, not described again"

    (project.root / "model.txt").write_text("Goodbye, world.\n")  # the file it read changed: described again
    view = json.loads(project.cli("-p", "described_source", "plan", "manifest.yaml", "--explain", "--format", "json",
                                  env=env).assert_ok().stdout)
    assert calls() == first + 1
    assert any(n.get("why") for n in view["nodes"])
