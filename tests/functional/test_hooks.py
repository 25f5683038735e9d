"""Lifecycle hooks seen by a plugin registered in-process, through the Python API."""

from __future__ import annotations

from buildsys import hookimpl
from buildsys.build import BuildOptions, build
from buildsys.project import Project


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def buildsys_build_started(self, graph, host, jobs):
        self.events.append(("started", len(graph.nodes), jobs))

    @hookimpl
    def buildsys_stage_started(self, node):
        self.events.append(("stage_started", node.stage))

    @hookimpl
    def buildsys_stage_progress(self, node, done, total, message):
        self.events.append(("progress", node.stage, done, total, message))

    @hookimpl
    def buildsys_stage_finished(self, node, outcome):
        self.events.append(("stage_finished", node.stage, outcome.status))

    @hookimpl
    def buildsys_build_finished(self, outcomes, ok):
        self.events.append(("finished", ok))


def test_lifecycle_order_and_progress(hello):
    (hello.root / "manifest.yaml").write_text((hello.root / "manifest.yaml").read_text().replace(
        "stats:      {format: text.stats}", "stats:      {format: text.stats, options: {text.wordcount: {delay: 1.0}}}"))
    project = Project(hello.root / "manifest.yaml")
    recorder = Recorder()
    project.pm.register(recorder)
    build(project, BuildOptions(targets=["stats"], jobs=2))
    events = recorder.events
    assert events[0] == ("started", 3, 2) and events[-1] == ("finished", True)
    assert events.index(("stage_started", "text.wordcount")) > events.index(("stage_finished", "text.normalize", "built"))
    progress = [e for e in events if e[0] == "progress"]
    assert len(progress) >= 5 and progress[0][1] == "text.wordcount" and progress[-1][3] == 10.0
    assert all(e[4] == "counting" for e in progress)
    assert events.index(progress[-1]) < events.index(("stage_finished", "text.wordcount", "built"))
