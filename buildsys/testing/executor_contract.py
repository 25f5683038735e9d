"""The executor contract: subclass ``ExecutorContract``, set ``executor``, and pytest checks it."""

from __future__ import annotations

import pytest

from .recorder import EVENTS_ENV, read_events
from .runner import CliResult, ProjectDir

#: A DAG of the framework-free text plugin's stages: one source, two roots (normalize plain
#: and lowercase), a chain of three (normalize -> ascii -> wordcount) and three siblings on
#: the plain normalize (ascii, compile, pack). Seven nodes, six of them built.
MANIFEST = """
schema: 1
name: executor
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
  lowercase:  {format: text, options: {text.normalize: {lowercase: true}}}
  ascii:      {format: text, precision: int8}
  stats:      {format: text.stats, precision: int8}
  native:     {format: text.bin, hardware: cpu}
  packed:     {format: text.pack, hardware: sm89}
"""
MODEL = "  Hello, executor.\n  Bonjour — ça va?\n"
NOT_UTF8 = b"caf\xe9 \xff not utf-8\n"  # every text.normalize fails on it: a failure with dependents
TARGETS = {"normalized", "lowercase", "ascii", "stats", "native", "packed"}


class ExecutorContract:
    """Checks an executor plugin by building a small DAG of the text plugin's stages with it.

    Set ``executor`` to the name your plugin registers (``ExecutorSpec.name``); ``jobs`` is the
    ``-j`` the builds use (default 2). Override the ``executor_env`` fixture to return the
    environment variables the ``buildsys`` command needs to reach your executor's backend (a
    cluster address, a temp dir ...); give it a wider scope to start that backend once::

        class TestRayExecutor(ExecutorContract):
            executor = "ray"

            @pytest.fixture(scope="class")
            def executor_env(self):
                with local_cluster() as address:
                    yield {"RAY_ADDRESS": address}

    Each check runs ``buildsys build --executor NAME --json`` in an isolated project (the
    ``buildsys_project`` fixture) with ``buildsys.testing.recorder`` loaded, and reads what
    happened from the JSON summary and the recorded lifecycle events. The checks: every node is
    built exactly once, never before its inputs are settled, and every target is written, and a
    second build is all cache hits that dispatch nothing; with ``--keep-going`` a failure
    skips exactly its dependents, each skip naming a failed or skipped input, while unrelated
    nodes are built (also ones that start long after the failure) and the failure is not
    cached; without it, nothing starts after a failure and every unstarted node is skipped,
    naming it. (The slow node is ``contract.wait`` from ``buildsys.testing.recorder``.)
    ``build(project, *args, env=...)`` runs one build the same way, for checks of your own.
    """

    executor: str = "local"
    jobs: int = 2

    @pytest.fixture
    def executor_env(self) -> dict[str, str]:
        return {}

    @pytest.fixture
    def project(self, buildsys_project: ProjectDir) -> ProjectDir:
        buildsys_project.manifest(MANIFEST, files={"model.txt": MODEL})
        return buildsys_project

    def build(self, project: ProjectDir, *args: str, env: dict[str, str] | None = None) -> tuple[CliResult, list[dict]]:
        """Build ``manifest.yaml`` with this executor; return the result and the events seen."""
        events = project.root / f"events-{len(list(project.root.glob('events-*')))}.jsonl"
        result = project.cli("-p", "buildsys.testing.recorder", "build", "manifest.yaml", "--executor",
                             self.executor, "-j", str(self.jobs), *args,
                             env={**(env or {}), EVENTS_ENV: str(events)})
        return result, read_events(events)

    # -- the checks -------------------------------------------------------------------------

    def test_builds_every_node_once_in_dependency_order_then_all_from_cache(self, project, executor_env):
        result, events = self.build(project, env=executor_env)
        result.assert_ok()
        inputs = _graph(events)
        assert len(inputs) == 7, f"expected the contract's 7-node DAG, got {sorted(inputs)}"
        stages = [n for n, deps in inputs.items() if deps]
        assert result.nodes("built") == sorted(stages), result.stderr
        assert set(result.summary["targets"]) == TARGETS
        for node, deps in inputs.items():
            _assert_started_after_inputs(events, node, deps)
        started = [e["node"] for e in events if e["event"] == "stage_started"]
        assert sorted(started) == sorted(stages), f"nodes dispatched more or less than once: {started}"
        assert events[-1] == {"event": "build_finished", "ok": True}

        again, events = self.build(project, env=executor_env)
        again.assert_ok()
        again.assert_nodes(built=0, failed=0, skipped=0, cached=6)
        assert [e for e in events if e["event"] == "stage_started"] == [], "a fully cached build dispatched work"

    def test_keep_going_skips_only_the_dependents_of_a_failure(self, project, executor_env):
        project.write("model.txt", NOT_UTF8)
        result, events = self.build(project, "--keep-going", env=executor_env)
        assert result.exit_code == 1, result.stderr
        failed, skipped = result.nodes("failed"), result.nodes("skipped")
        assert {n.split("#")[0] for n in failed} == {"text.normalize"} and len(failed) == 2, result.stderr
        assert {n.split("#")[0] for n in skipped} == {"text.ascii", "text.wordcount", "text.compile", "text.pack"}
        for node in skipped:
            error = result.summary["nodes"][node]["error"] or ""
            assert any(other in error for other in failed + skipped), f"{node} skipped without naming why: {error}"
        assert not any(e["event"] == "stage_started" and e["node"] in skipped for e in events)

    def test_keep_going_builds_what_does_not_depend_on_a_failure(self, project, executor_env):
        _add_targets(project, EARLY_FAILURE)
        result, events = self.build(project, "--keep-going", env=executor_env)
        assert result.exit_code == 1, result.stderr
        [failed] = result.nodes("failed")
        assert failed.startswith("text.wordcount#"), result.stderr
        result.assert_nodes(skipped=0, built=8)  # the contract's six, contract.wait and the late compile
        assert set(result.summary["targets"]) == TARGETS | {"late"}
        assert _started_after(events, failed), "nothing was started after the failure: is --keep-going ignored?"
        manifest = project.root / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("fail: true", "fail: false"))
        fixed, _ = self.build(project, env=executor_env)
        fixed.assert_ok()
        fixed.assert_nodes(built=["text.wordcount"], cached=8)  # the failure was not cached

    def test_without_keep_going_a_failure_starts_nothing_new(self, project, executor_env):
        _add_targets(project, EARLY_FAILURE)
        result, events = self.build(project, env=executor_env)
        assert result.exit_code == 1, result.stderr
        [failed] = result.nodes("failed")
        assert failed.startswith("text.wordcount#"), result.stderr
        assert _started_after(events, failed) == [], "nodes were started after the failure"
        late = [n for n in result.nodes("skipped") if n.startswith("text.compile#")]
        assert late, f"the compile after contract.wait should not have started: {result.summary}"
        settled = set(result.nodes("built")) | set(result.nodes("failed")) | set(result.nodes("skipped"))
        assert settled == {n for n, deps in _graph(events).items() if deps}, "every node must be settled"
        for node in result.nodes("skipped"):
            assert failed in (result.summary["nodes"][node]["error"] or ""), f"{node}'s skip does not name {failed}"


#: Two more targets: one whose wordcount fails at once, and one whose last node can only start
#: two seconds after its first (so well after that failure, whatever the executor's order).
EARLY_FAILURE = """\
  counted: {format: text.stats, options: {text.wordcount: {fail: true}}}
  late: {format: text.bin, hardware: cpu, pipeline: [text.normalize, contract.wait, text.compile],
         options: {contract.wait: {seconds: 2}}}
"""


def _add_targets(project: ProjectDir, targets: str) -> None:
    manifest = project.root / "manifest.yaml"
    manifest.write_text(manifest.read_text() + targets)


def _started_after(events: list[dict], failed: str) -> list[str]:
    """Nodes dispatched after ``failed`` was settled."""
    at = next(i for i, e in enumerate(events) if e["event"] == "stage_finished" and e["node"] == failed)
    return [e["node"] for e in events[at:] if e["event"] == "stage_started"]


def _graph(events: list[dict]) -> dict[str, list[str]]:
    """Node id -> its inputs, from the ``build_started`` event."""
    [started] = [e for e in events if e["event"] == "build_started"]
    return started["inputs"]


def _assert_started_after_inputs(events: list[dict], node: str, deps: list[str]) -> None:
    positions = {(e["event"], e.get("node")): i for i, e in enumerate(events)}
    start = positions.get(("stage_started", node), positions.get(("stage_finished", node)))
    assert start is not None, f"{node} never ran"
    for dep in deps:
        done = positions.get(("stage_finished", dep))
        assert done is not None and done < start, f"{node} started before its input {dep} was settled"
