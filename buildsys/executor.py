"""Executors run the planned DAG; this module holds their interface and the builtin ``local``.

An executor asks the driver (``Driver``, implemented by ``buildsys.driver.BuildDriver``) to ``prepare`` each node whose inputs
are settled (the driver computes the action key and answers from the cache when it can),
runs the ``Job``s it gets back wherever it likes, and hands each result to ``finish``. The error
policy is the executor's to apply: on failure, stop starting new nodes (``fail``) or skip only
the failed node's dependents (``keep_going``), naming the node that caused each skip.

``BaseExecutor`` is that loop, shared by every executor so the error policy behaves the same
everywhere; a subclass says how a job starts, how a finished one is noticed and how running jobs
are stopped. The builtin ``local`` executor (``buildsys.builtin.local``) runs jobs in worker
processes, ``jobs`` at a time: warm ones kept between jobs (``buildsys.pool``), or one
``python -m buildsys.worker`` per job without the pool and for ``isolated`` stages.

Two optional executor attributes let an executor take part in planning and in ``-j``:
``provides(request: HardwareTag) -> HardwareTag | None`` says which hardware the executor can run
a node on beyond this host (the planner then plans, instead of refusing, a target-hardware stage
for it; the node's ``runs_on`` says where it must run), and ``default_jobs`` is the parallelism
when ``-j`` is not given (1 if absent).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from .jobs import parse_progress
from .records import Job, NodeOutcome, Wait

POLL_SECONDS = 0.02


class Driver(Protocol):
    """What executors call back (``buildsys.driver.BuildDriver``). ``shared`` is the build's
    ``SharedStore`` (None without ``--store``); ``source_files()`` lists the model source's
    files as ``(name relative to a common root, path, sha256, size)`` plus that root's path
    relative to it, for executors that run jobs on other machines."""

    graph: object
    shared: object

    def source_files(self) -> tuple[list[tuple[str, Path, str, int]], str]: ...
    def prepare(self, node_id: str) -> NodeOutcome | Job | Wait: ...
    def finish(self, node_id: str, job: Job, returncode: int) -> NodeOutcome: ...
    def skip(self, node_id: str, reason: str) -> NodeOutcome: ...
    def progress(self, node_id: str, done: float, total: float, message: str) -> None: ...
    def abort(self, node_id: str, job: Job) -> None: ...


class Executor(Protocol):
    def execute(self, driver: Driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]: ...


# --------------------------------------------------------------------------------------------


class BaseExecutor:
    """The scheduling loop every executor shares: readiness, ``-j``, the error policy, Ctrl-C.

    Asks the driver to prepare each node whose inputs are settled, starts at most ``jobs`` of
    the jobs it gets (``start``), collects finished ones (``reap``), skips the dependents of a
    failed node and, without ``keep_going``, every node not yet started; on any exception
    (Ctrl-C included) it stops what runs (``stop_all``) and re-raises. ``running`` maps node id
    to ``(handle, job)``, the handle being what ``start`` returned; ``outcomes`` and ``pending``
    are readable by subclasses while the build runs.
    """

    def __init__(self):
        self.running: dict[str, tuple[object, Job]] = {}
        self.outcomes: dict[str, NodeOutcome] = {}
        self.pending: list[str] = []

    # -- what a subclass implements -----------------------------------------------------

    def start(self, driver: Driver, job: Job) -> object:
        """Start ``job``; return a handle kept in ``running``. On error, abort the job first."""
        raise NotImplementedError

    def reap(self, driver: Driver) -> list[tuple[str, NodeOutcome]]:
        """Settle finished jobs (through ``driver.finish``), remove them from ``running``."""
        raise NotImplementedError

    def stop_all(self, driver: Driver) -> None:
        """Stop every running job and ``driver.abort`` it; called on any exception."""
        raise NotImplementedError

    def idle(self) -> None:
        """Wait a little when nothing progressed (an executor may wait on its jobs instead)."""
        time.sleep(POLL_SECONDS)

    # -- the loop ------------------------------------------------------------------------

    def execute(self, driver: Driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]:
        graph = driver.graph
        outcomes = self.outcomes = {}
        pending = self.pending = list(graph.nodes)
        stopped_by: str | None = None
        try:
            while pending or self.running:
                progressed = self._launch(driver, graph, pending, outcomes, jobs, stopped_by)
                for node_id, outcome in self.reap(driver):
                    outcomes[node_id] = outcome
                    progressed = True
                    if not outcome.ok and not keep_going and stopped_by is None:
                        stopped_by = node_id
                if stopped_by and not self.running:
                    for node_id in pending:
                        outcomes[node_id] = driver.skip(
                            node_id, f"not started: '{stopped_by}' failed (use --keep-going to build the rest)")
                    pending.clear()
                if not progressed:
                    self.idle()
        except BaseException:
            self.stop_all(driver)
            discard = getattr(driver, "discard_unfinished", None)
            if discard is not None:  # a job prepared but not yet started when the interrupt came
                discard()
            raise
        return outcomes

    def _launch(self, driver, graph, pending, outcomes, jobs, stopped_by) -> bool:
        progressed = False
        for node_id in list(pending):
            deps = graph.nodes[node_id].inputs
            bad = [d for d in deps if d in outcomes and not outcomes[d].ok]
            if bad:
                outcomes[node_id] = driver.skip(node_id, f"input '{bad[0]}' {outcomes[bad[0]].status}")
                pending.remove(node_id)
                progressed = True
                continue
            if stopped_by or not all(d in outcomes for d in deps) or len(self.running) >= jobs:
                continue
            result = driver.prepare(node_id)
            if isinstance(result, Wait):
                continue
            pending.remove(node_id)
            progressed = True
            if isinstance(result, NodeOutcome):
                outcomes[node_id] = result
            else:
                self.running[node_id] = (self.start(driver, result), result)
        return progressed

    def forward_progress_line(self, driver: Driver, node_id: str, line: str) -> None:
        """Pass one line of a worker's output to the driver if it is a ``ctx.progress`` line."""
        progress = parse_progress(line)
        if progress is not None:
            driver.progress(node_id, *progress)
