"""Executors run the planned DAG; this module holds their interface and the builtin ``local``.

An executor asks the driver (``buildsys.build.Driver``) to ``prepare`` each node whose inputs
are settled (the driver computes the action key and answers from the cache when it can),
runs the ``Job``s it gets back wherever it likes, and hands each result to ``finish``. The error
policy is the executor's to apply: on failure, stop starting new nodes (``fail``) or skip only
the failed node's dependents (``keep_going``), naming the node that caused each skip.

The local executor runs every job in its own worker process (``python -m buildsys.worker``),
``jobs`` at a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .hookspecs import hookimpl
from .specs import ExecutorSpec

BUILT, CACHED, FAILED, SKIPPED, RESOLVED = "built", "cached", "failed", "skipped", "resolved"
SETTLED_OK = (BUILT, CACHED, RESOLVED)
POLL_SECONDS = 0.02
PROGRESS_PREFIX = "buildsys-progress "  # written by StageContext.progress


@dataclass
class NodeOutcome:
    """How a node ended. ``error`` is one line for failed and skipped nodes."""

    status: str
    seconds: float = 0.0
    error: str | None = None
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status in SETTLED_OK


@dataclass
class Job:
    """A node that must run: the job file a worker reads, and the folder it works in."""

    node_id: str
    workdir: Path
    job_file: Path
    started: float = field(default_factory=time.perf_counter)


class Wait:
    """``prepare`` returns this when another build holds the node's lock: ask again later."""


class Driver(Protocol):
    graph: object

    def prepare(self, node_id: str) -> NodeOutcome | Job | Wait: ...
    def finish(self, node_id: str, job: Job, returncode: int) -> NodeOutcome: ...
    def skip(self, node_id: str, reason: str) -> NodeOutcome: ...
    def progress(self, node_id: str, done: float, total: float, message: str) -> None: ...
    def abort(self, node_id: str, job: Job) -> None: ...


class Executor(Protocol):
    def execute(self, driver: Driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]: ...


# --------------------------------------------------------------------------------------------


class LocalExecutor:
    """Runs jobs as worker processes on this machine, at most ``jobs`` at once."""

    def __init__(self, **_options):
        self.running: dict[str, tuple[subprocess.Popen, Job]] = {}
        self._log_offsets: dict[str, int] = {}

    def execute(self, driver: Driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]:
        graph = driver.graph
        outcomes: dict[str, NodeOutcome] = {}
        pending = list(graph.nodes)
        stopped_by: str | None = None
        try:
            while pending or self.running:
                progressed = self._launch(driver, graph, pending, outcomes, jobs, stopped_by)
                for node_id, outcome in self._reap(driver):
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
                    time.sleep(POLL_SECONDS)
        except BaseException:
            self._terminate_all(driver)
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
                self.running[node_id] = (self._spawn(result), result)
        return progressed

    def _spawn(self, job: Job) -> subprocess.Popen:
        log = open(job.workdir / "worker.log", "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The worker gets SIGINT with the rest of the terminal's process group on Ctrl-C; the
        # driver then reaps it and removes its work folder.
        proc = subprocess.Popen([sys.executable, "-m", "buildsys.worker", str(job.job_file)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=job.workdir)
        log.close()
        return proc

    def _reap(self, driver) -> list[tuple[str, NodeOutcome]]:
        done = []
        for node_id, (proc, job) in list(self.running.items()):
            returncode = proc.poll()
            self._forward_progress(driver, node_id, job)
            if returncode is not None:
                del self.running[node_id]
                done.append((node_id, driver.finish(node_id, job, returncode)))
        return done

    def _forward_progress(self, driver, node_id: str, job: Job) -> None:
        """Pass on the ``ctx.progress`` lines the worker wrote since the last poll."""
        offset = self._log_offsets.get(node_id, 0)
        try:
            with open(job.workdir / "worker.log", "rb") as log:
                log.seek(offset)
                chunk = log.read()
        except OSError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._log_offsets[node_id] = offset + len(complete)
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith(PROGRESS_PREFIX):
                parts = line[len(PROGRESS_PREFIX):].split(" ", 2)
                try:
                    driver.progress(node_id, float(parts[0]), float(parts[1]), parts[2] if len(parts) > 2 else "")
                except (ValueError, IndexError):
                    continue

    def _terminate_all(self, driver) -> None:
        for proc, _ in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for node_id, (proc, job) in self.running.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            driver.abort(node_id, job)
        self.running.clear()


@hookimpl
def buildsys_register_executors():
    return [ExecutorSpec(name="local", create=LocalExecutor,
                         description="worker processes on this machine (-j N at once)")]
