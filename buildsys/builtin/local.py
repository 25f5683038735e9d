"""The builtin ``local`` executor: jobs in worker processes on this machine, at most ``-j`` at
once. Its scheduling loop is ``buildsys.executor.BaseExecutor``'s.

By default jobs go to the warm worker pool (``buildsys.pool``): long-lived workers that keep
their imports between jobs. With ``pool=False`` (``build --no-pool``, ``[build] pool = false``,
``BUILDSYS_POOL=0``), and always for a stage declared ``isolated``, a job gets a process of its
own (``python -m buildsys.worker job.json``). Either way a crash, a kill from outside or a stage
past its ``timeout`` fails only that node; Ctrl-C and SIGTERM stop every worker by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..errors import BuildsysError
from ..executor import BaseExecutor
from ..hookspecs import hookimpl
from ..jobs import JobResult
from ..pool import GRACE_SECONDS, PooledWorker, PoolSettings, WorkerPool
from ..records import Job, NodeOutcome
from ..specs import ExecutorSpec

#: Options the local executor takes (from ``[build]`` in buildsys.toml, flags and env vars).
OPTIONS = ("pool", "worker_jobs", "worker_rss_mb", "stage_timeout")


class LocalExecutor(BaseExecutor):
    """Runs jobs as worker processes on this machine, at most ``jobs`` at once.

    ``pool``/``worker_jobs``/``worker_rss_mb``: the warm pool's ``PoolSettings``;
    ``stage_timeout``: seconds a stage that declares no ``timeout`` may run (None: no limit)."""

    def __init__(self, pool: bool = True, worker_jobs: int | None = None, worker_rss_mb: int | None = None,
                 stage_timeout: float | None = None, **options):
        if options:
            raise BuildsysError(f"the local executor takes no options, got: {', '.join(sorted(options))}",
                                hint="--address and [executors.NAME] settings are for executors such as ray "
                                     "(--executor ray); the local executor's are [build] "
                                     + ", ".join(OPTIONS))
        super().__init__()
        defaults = PoolSettings()
        self.settings = PoolSettings(bool(pool), worker_jobs or defaults.worker_jobs,
                                     worker_rss_mb or defaults.worker_rss_mb)
        self.stage_timeout = stage_timeout
        self.pool = WorkerPool(self.settings) if self.settings.enabled else None
        self._log_offsets: dict[str, int] = {}

    def execute(self, driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]:
        if self.pool is not None:
            self.pool.capacity = jobs + 1
        try:
            return super().execute(driver, jobs, keep_going)
        finally:
            if self.pool is not None:
                self.pool.shutdown()

    def start(self, driver, job: Job):
        if self.pool is not None and not job.isolated:
            return self.pool.start(job, cwd=str(job.workdir.parent))
        log = open(job.log_file, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The worker gets SIGINT with the rest of the terminal's process group on Ctrl-C; the
        # driver then reaps it and removes its work folder.
        proc = subprocess.Popen([sys.executable, "-m", "buildsys.worker", str(job.job_file)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=job.workdir)
        log.close()
        return proc

    def reap(self, driver) -> list[tuple[str, NodeOutcome]]:
        done = []
        for node_id, (handle, job) in list(self.running.items()):
            self._forward_progress(driver, node_id, job)
            returncode = handle.poll()
            if returncode is None and self._timed_out(job):
                returncode = self._stop_overdue(handle, job)
            if returncode is None:
                continue
            del self.running[node_id]
            if isinstance(handle, PooledWorker):
                self._settle_worker(handle, returncode)
            done.append((node_id, driver.finish(node_id, job, returncode)))
        return done

    def _timed_out(self, job: Job) -> bool:
        limit = job.timeout if job.timeout is not None else self.stage_timeout
        return limit is not None and time.perf_counter() - job.started > limit

    def _stop_overdue(self, handle, job: Job) -> int:
        """Kill the worker of a stage past its timeout; its node fails saying so."""
        limit = job.timeout if job.timeout is not None else self.stage_timeout
        _kill(handle)
        JobResult.failure(f"the stage ran past its timeout of {limit:g} s; its worker process was killed "
                          f"(set StageSpec.timeout or [build] stage_timeout)").write(job.result_file)
        return 0

    def _settle_worker(self, worker: PooledWorker, returncode: int) -> None:
        if returncode == 0 and worker.reply is not None:
            self.pool.done(worker)
        else:  # died, killed from outside, or past its timeout: never reused
            self.pool.discard(worker)

    def _forward_progress(self, driver, node_id: str, job: Job) -> None:
        """Pass on the ``ctx.progress`` lines the worker wrote since the last poll."""
        offset = self._log_offsets.get(node_id, 0)
        try:
            with open(job.log_file, "rb") as log:
                log.seek(offset)
                chunk = log.read()
        except OSError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._log_offsets[node_id] = offset + len(complete)
        for line in complete.decode(errors="replace").splitlines():
            self.forward_progress_line(driver, node_id, line)

    def stop_all(self, driver) -> None:
        for handle, _ in self.running.values():
            if isinstance(handle, subprocess.Popen) and handle.poll() is None:
                handle.send_signal(signal.SIGTERM)
        if self.pool is not None:
            self.pool.stop(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for node_id, (handle, job) in self.running.items():
            if isinstance(handle, subprocess.Popen):
                try:
                    handle.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    handle.kill()
                    handle.wait()
            driver.abort(node_id, job)
        self.running.clear()


def _kill(handle) -> None:
    if isinstance(handle, PooledWorker):
        handle.signal(signal.SIGKILL)
        handle.proc.wait()
    else:
        handle.kill()
        handle.wait()


@hookimpl
def buildsys_register_executors():
    return [ExecutorSpec(name="local", create=LocalExecutor,
                         description="worker processes on this machine (-j N at once), warm between jobs")]
