"""The per-node driver on a real project (the framework-free text plugin), without an executor:
what ``plan`` is told, the job a worker gets, what a worker's result becomes, cache hits, a
node another build holds, a worker that died."""

from __future__ import annotations

import signal

import pytest

from buildsys import JobResult, JobSpec
from buildsys.driver import BuildDriver
from buildsys.project import Project
from buildsys.records import BUILT, CACHED, FAILED, RESOLVED, Job, Wait

MANIFEST = """
schema: 1
name: drv
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.txt").write_text("  Hello  World \n")
    (tmp_path / "m.yaml").write_text(MANIFEST)
    return Project(tmp_path / "m.yaml", out_dir=tmp_path / "out")


def ids(project):
    graph = project.graph.select(["normalized"])
    [source] = [n for n in graph.nodes if n.startswith("source")]
    [stage] = [n for n in graph.nodes if n.startswith("text.normalize")]
    return graph, source, stage


def run_stage(job: Job, text: str = "hello world\n") -> None:
    """What a worker does: write the output, then the result beside the job file."""
    spec = JobSpec.read(job.job_file)
    (job.workdir / "out" / "model.txt").write_text(text)
    JobResult(ok=True, meta={"primary": "model.txt"}, seconds=0.1).write(job.result_file)
    assert spec.node == job.node_id


def test_plan_status_then_a_job_then_a_cache_hit(project):
    graph, source, stage = ids(project)
    plan_driver = BuildDriver(project, graph)
    assert plan_driver.status(source)[0] == "source"
    status, key = plan_driver.status(stage)
    assert status == "will build" and key == plan_driver.settled.actions[stage].key

    driver = BuildDriver(project, graph)
    assert driver.prepare(source).status == RESOLVED
    job = driver.prepare(stage)
    assert isinstance(job, Job)
    spec = JobSpec.read(job.job_file)
    assert (spec.stage, spec.targets, spec.key) == ("text.normalize", ("normalized",), key)
    assert spec.inputs[0].is_source and spec.source.manifest["name"] == "drv"
    run_stage(job)
    assert driver.finish(stage, job, 0).status == BUILT
    entry = driver.settled.entries[stage]
    assert entry.key == key and [f.name for f in entry.files] == ["model.txt"] and not job.workdir.exists()

    again = BuildDriver(project, graph)
    again.prepare(source)
    assert again.prepare(stage).status == CACHED
    planned = BuildDriver(project, graph)
    planned.status(source)
    assert planned.status(stage) == ("cached", key)


def test_a_node_another_build_holds_waits(project):
    graph, source, stage = ids(project)
    driver = BuildDriver(project, graph)
    driver.prepare(source)
    key = driver.action(graph.nodes[stage]).key
    held = project.store.lock(key)
    assert held.try_acquire()
    try:
        assert isinstance(driver.prepare(stage), Wait)
    finally:
        held.release()
    assert isinstance(driver.prepare(stage), Job)


def test_a_worker_that_died_fails_its_node_and_keeps_its_log(project):
    graph, source, stage = ids(project)
    driver = BuildDriver(project, graph)
    driver.prepare(source)
    job = driver.prepare(stage)
    job.log_file.write_text("the backend printed this\n")
    outcome = driver.finish(stage, job, -signal.SIGSEGV)
    assert outcome.status == FAILED and "died with SIGSEGV" in outcome.error
    assert outcome.log.read_text() == "the backend printed this\n" and stage not in driver.settled.entries
    assert project.store.lock(driver.action(graph.nodes[stage]).key).try_acquire()  # released


def test_a_build_stopped_between_prepare_and_start_leaves_no_job_folder(project):
    """Ctrl-C can land after the driver made a job's folder and before the executor holds the
    job (so stop_all cannot abort it): the loop still removes it and releases its node lock."""
    from buildsys.executor import BaseExecutor

    class InterruptedOnStart(BaseExecutor):
        def start(self, driver, job):
            raise KeyboardInterrupt

        def reap(self, driver):
            return []

        def stop_all(self, driver):
            pass

    graph, _, stage = ids(project)
    driver = BuildDriver(project, graph)
    with pytest.raises(KeyboardInterrupt):
        InterruptedOnStart().execute(driver, jobs=1, keep_going=False)
    assert list((project.store.root / "tmp").iterdir()) == []
    assert project.store.lock(driver.settled.actions[stage].key).try_acquire(), "the node lock was released"
