"""The local executor's warm worker pool: long-lived ``python -m buildsys.workerloop``
processes (``buildsys.workerloop``) that take job after job, so a build pays for importing
torch and loading the plugins once per worker instead of once per stage.

A job goes to an idle worker that already imported what its stage ``requires`` (the most
overlap wins; a stage that requires nothing, as validation, which loads whatever runtime its
artifact needs, goes to the worker that imported the most), else to a new worker; at most
``-j`` + 1 workers live at once. A worker is retired (its stdin closed, so it exits) after
``worker_jobs`` jobs, when its resident memory is above ``worker_rss_mb`` after a job, or when
it could not put its process state back. A worker that dies, is killed or hangs past a stage's
timeout takes only its own job with it: the executor fails that node and the next job gets a
new worker. Workers are stopped by PID (SIGTERM, then SIGKILL); on Linux they also die with the
build process (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from .jobs import POOL_PARENT_ENV, WorkerReply, WorkerRequest
from .records import Job

#: Seconds a retired or stopped worker gets to exit before it is killed.
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class PoolSettings:
    """``enabled``: run jobs in pooled workers (False: a fresh process per job, as before).
    ``worker_jobs``: jobs a worker runs before it is replaced. ``worker_rss_mb``: resident
    memory above which a worker is replaced once its job is done."""

    enabled: bool = True
    worker_jobs: int = 100
    worker_rss_mb: int = 4096


class PooledWorker:
    """One worker process and the pipe to it. ``requires``: the distributions of every job it
    ran (what it has imported); ``job``: the job it runs now (None when idle)."""

    def __init__(self, cwd: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{POOL_PARENT_ENV: str(os.getpid())})
        self.proc = subprocess.Popen([sys.executable, "-m", "buildsys.workerloop"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.requires: set[str] = set()
        self.jobs_done = 0
        self.job: Job | None = None
        self.reply: WorkerReply | None = None
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, job: Job) -> None:
        """Hand ``job`` to the worker; raises ``BrokenPipeError`` if it is gone."""
        self.job, self.reply = job, None
        self.proc.stdin.write(WorkerRequest(str(job.job_file)).to_line())
        self.proc.stdin.flush()
        self.requires |= {_distribution(r) for r in job.requires}

    def poll(self) -> int | None:
        """None while the job runs; 0 once the worker answered; else the status it died with."""
        if self.reply is None:
            self._read()
        if self.reply is not None:
            return 0
        return self.proc.poll()

    def _read(self) -> None:
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        self._buffer += chunk
        if b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self.reply = WorkerReply.from_line(line)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Ask an idle worker to exit (end of its stdin)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class WorkerPool:
    """The workers of one build (see the module docstring); ``capacity`` bounds how many live."""

    def __init__(self, settings: PoolSettings, capacity: int = 2):
        self.settings, self.capacity = settings, capacity
        self.idle: list[PooledWorker] = []
        self.busy: list[PooledWorker] = []
        self.retired: list[PooledWorker] = []

    def start(self, job: Job, cwd: str) -> PooledWorker:
        """Send ``job`` to the best idle worker, or to a new one. An idle worker found dead
        (killed from outside) is not the job's fault: a new worker takes it; a new worker that
        cannot take it fails the job with the status it exited with."""
        worker = self._choose(job)
        if worker is not None and not self._send(worker, job):
            self._retire(worker)
            worker = None
        if worker is None:
            worker = self._spawn(cwd)
            self._send(worker, job)
        self.busy.append(worker)
        return worker

    @staticmethod
    def _send(worker: PooledWorker, job: Job) -> bool:
        try:
            worker.send(job)
            return True
        except OSError:  # BrokenPipeError: the process is gone
            return False

    def done(self, worker: PooledWorker) -> None:
        """The worker's job is settled: keep it for the next one, or retire it."""
        self.busy.remove(worker)
        worker.jobs_done += 1
        reply, worker.job = worker.reply, None
        if reply is not None:  # what it has really imported, named as requirements are
            worker.requires |= {_distribution(m) for m in reply.imported}
        healthy = reply is not None and reply.clean and worker.proc.poll() is None
        if healthy and worker.jobs_done < self.settings.worker_jobs and reply.rss_mb <= self.settings.worker_rss_mb:
            self.idle.append(worker)
        else:
            self._retire(worker)

    def discard(self, worker: PooledWorker) -> None:
        """The worker died or was killed with its job: never reuse it."""
        self.busy.remove(worker)
        worker.signal(signal.SIGKILL)
        self.retired.append(worker)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal every worker (busy ones too), then kill what has not exited after the grace."""
        for worker in self.busy + self.idle:
            worker.close()
            worker.signal(sig)
        self.shutdown()

    def shutdown(self) -> None:
        """End every worker: idle and retired ones at once (they hold nothing: their results are
        written, and a process that imported torch takes seconds to exit politely); busy ones
        (signalled by ``stop``) get the grace, then are killed."""
        for worker in self.idle + self.retired:
            worker.signal(signal.SIGKILL)
            worker.close()
        self.retired += self.idle
        self.idle = []
        deadline = time.monotonic() + GRACE_SECONDS
        for worker in self.busy + self.retired:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.signal(signal.SIGKILL)
                worker.proc.wait()
            _close_pipes(worker)
        self.busy, self.retired = [], []

    def _choose(self, job: Job) -> PooledWorker | None:
        self._drop_dead()
        wanted = {_distribution(r) for r in job.requires}
        suits = [w for w in self.idle if not wanted or not w.requires or wanted & w.requires]
        if not suits:
            return None
        if wanted:  # the most of what it needs, the least else
            best = max(suits, key=lambda w: (len(wanted & w.requires), -len(w.requires - wanted)))
        else:  # it declares nothing (validation: it loads whatever runtime its artifact needs):
            best = max(suits, key=lambda w: len(w.requires))  # the worker that has imported the most
        self.idle.remove(best)
        return best

    def _spawn(self, cwd: str) -> PooledWorker:
        while self.idle and len(self.idle) + len(self.busy) >= self.capacity:
            self._retire(self.idle.pop(0))  # the least recently used worker makes room
        return PooledWorker(cwd)

    def _drop_dead(self) -> None:
        for worker in [w for w in self.idle if w.proc.poll() is not None]:
            self.idle.remove(worker)
            self.retired.append(worker)
        self._reap_retired()

    def _retire(self, worker: PooledWorker) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        worker.close()
        self.retired.append(worker)

    def _reap_retired(self) -> None:
        for worker in [w for w in self.retired if w.proc.poll() is not None]:
            self.retired.remove(worker)
            _close_pipes(worker)


def _distribution(name: str) -> str:
    """A distribution or module name in one spelling (``onnx-runtime`` and ``onnx_runtime`` match)."""
    return name.lower().replace("-", "_").replace(".", "_")


def _close_pipes(worker: PooledWorker) -> None:
    for pipe in (worker.proc.stdin, worker.proc.stdout):
        try:
            pipe.close()
        except OSError:
            pass
