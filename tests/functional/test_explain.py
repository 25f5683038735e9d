"""plan --explain / build --explain: what changed since the lockfile, per node that will build."""

from __future__ import annotations

import json
import re
import shutil

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
