"""The scheduling loop every executor shares (``BaseExecutor``), on a fake driver and a fake
executor that finishes jobs in the order it started them: exact start orders for -j 1 and 2,
the error policy with and without --keep-going, a node held by another build, Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphs import graph

from buildsys.executor import BaseExecutor
from buildsys.records import BUILT, FAILED, RESOLVED, SKIPPED, Job, NodeOutcome, Wait

#  source -> a -> b -> c        (c also needs d)
#            a -> d
EDGES = {"source:x": (), "a#1": ("source:x",), "b#1": ("a#1",), "d#1": ("a#1",), "c#1": ("b#1", "d#1")}


class FakeDriver:
    def __init__(self, g, fail=(), wait_once=()):
        self.graph, self.shared = g, None
        self.fail, self.waiting = set(fail), set(wait_once)
        self.calls: list[tuple[str, str]] = []

    def prepare(self, node_id):
        if self.graph.nodes[node_id].is_source:
            return NodeOutcome(RESOLVED)
        if node_id in self.waiting:
            self.waiting.discard(node_id)
            self.calls.append(("wait", node_id))
            return Wait()
        return Job(node_id, Path("/nonexistent") / node_id, Path("/nonexistent") / node_id / "job.json")

    def finish(self, node_id, job, returncode):
        self.calls.append(("finish", node_id))
        return NodeOutcome(FAILED, error="boom") if node_id in self.fail else NodeOutcome(BUILT)

    def skip(self, node_id, reason):
        self.calls.append(("skip", node_id))
        return NodeOutcome(SKIPPED, error=reason)

    def abort(self, node_id, job):
        self.calls.append(("abort", node_id))

    def progress(self, *args):
        pass


class FakeExecutor(BaseExecutor):
    """Starts jobs into a FIFO; each reap finishes the oldest running job."""

    def __init__(self, interrupt_after: int | None = None):
        super().__init__()
        self.started: list[str] = []
        self.interrupt_after = interrupt_after
        self.stopped: list[str] = []
        self.most_at_once = 0

    def start(self, driver, job):
        self.started.append(job.node_id)
        self.most_at_once = max(self.most_at_once, len(self.running) + 1)
        if self.interrupt_after is not None and len(self.started) > self.interrupt_after:
            raise KeyboardInterrupt
        return len(self.started)

    def reap(self, driver):
        if not self.running:
            return []
        node_id = min(self.running, key=lambda n: self.running[n][0])
        _, job = self.running.pop(node_id)
        return [(node_id, driver.finish(node_id, job, 0))]

    def stop_all(self, driver):
        for node_id, (_, job) in self.running.items():
            self.stopped.append(node_id)
            driver.abort(node_id, job)
        self.running.clear()

    def idle(self):
        pass


def run(jobs=1, keep_going=False, **driver_options):
    g = graph(EDGES, {"t": "c#1"})
    driver, executor = FakeDriver(g, **driver_options), FakeExecutor()
    outcomes = executor.execute(driver, jobs, keep_going)
    return executor, driver, outcomes


def test_one_at_a_time_in_graph_order():
    executor, _, outcomes = run(jobs=1)
    assert executor.started == ["a#1", "b#1", "d#1", "c#1"] and executor.most_at_once == 1
    assert {n: o.status for n, o in outcomes.items()} == {"source:x": RESOLVED, "a#1": BUILT, "b#1": BUILT,
                                                         "d#1": BUILT, "c#1": BUILT}


def test_two_at_a_time_starts_independent_nodes_together():
    executor, driver, _ = run(jobs=2)
    assert executor.started == ["a#1", "b#1", "d#1", "c#1"]
    assert executor.most_at_once == 2  # b and d side by side; c waited for both
    assert [c for c in driver.calls if c[0] == "finish"] == [("finish", n) for n in ("a#1", "b#1", "d#1", "c#1")]


def test_a_failure_without_keep_going_starts_nothing_new_and_names_the_cause():
    executor, driver, outcomes = run(jobs=1, fail={"b#1"})
    assert executor.started == ["a#1", "b#1"]
    assert outcomes["b#1"].status == FAILED
    assert outcomes["d#1"].status == SKIPPED and "not started: 'b#1' failed" in outcomes["d#1"].error
    assert outcomes["c#1"].status == SKIPPED and "'b#1'" in outcomes["c#1"].error


def test_keep_going_builds_what_does_not_depend_on_the_failure():
    executor, _, outcomes = run(jobs=1, keep_going=True, fail={"b#1"})
    assert executor.started == ["a#1", "b#1", "d#1"]
    assert outcomes["d#1"].status == BUILT
    assert outcomes["c#1"].status == SKIPPED and outcomes["c#1"].error == "input 'b#1' failed"


def test_a_node_another_build_holds_is_asked_again_later():
    executor, driver, outcomes = run(jobs=1, wait_once={"b#1"})
    assert ("wait", "b#1") in driver.calls and executor.started == ["a#1", "d#1", "b#1", "c#1"]
    assert all(o.ok for o in outcomes.values())


def test_ctrl_c_stops_what_runs_and_aborts_it():
    g = graph(EDGES, {"t": "c#1"})
    driver, executor = FakeDriver(g), FakeExecutor(interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        executor.execute(driver, 2, False)
    assert executor.started == ["a#1", "b#1", "d#1"]
    assert executor.stopped == ["b#1"] and ("abort", "b#1") in driver.calls
