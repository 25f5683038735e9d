"""The builtin ``local`` executor: every job in a worker process of its own on this machine,
at most ``-j`` at once. Its scheduling loop is ``buildsys.executor.BaseExecutor``'s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ..errors import BuildsysError
from ..executor import BaseExecutor
from ..hookspecs import hookimpl
from ..records import Job, NodeOutcome
from ..specs import ExecutorSpec


class LocalExecutor(BaseExecutor):
    """Runs jobs as worker processes on this machine, at most ``jobs`` at once."""

    def __init__(self, **options):
        if options:
            raise BuildsysError(f"the local executor takes no options, got: {', '.join(sorted(options))}",
                                hint="--address and [executors.NAME] settings are for executors such as ray "
                                     "(--executor ray)")
        super().__init__()
        self._log_offsets: dict[str, int] = {}

    def start(self, driver, job: Job) -> subprocess.Popen:
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
