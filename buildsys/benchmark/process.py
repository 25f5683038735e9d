"""One measuring process (``python -m buildsys.benchmark.child``) run from the driver: its stdout
shown line by line as the child prints it (no TTY needed: CI logs get it too), its stderr kept
for the error message, its exit described.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .protocol import BenchJob


@dataclass(frozen=True)
class ChildExit:
    """How a measuring process ended: exit status, the steps it announced, its stderr's tail."""

    returncode: int
    steps: list[str]  # the job's progress file: "start", "load TARGET", "time all"
    stderr_tail: str

    @property
    def how(self) -> str:
        return describe_exit(self.returncode)

    @property
    def loading(self) -> str | None:
        """The target it was loading when a signal took it down (None otherwise)."""
        last = self.steps[-1].split(" ", 1) if self.steps else []
        return last[1] if self.returncode < 0 and len(last) == 2 and last[0] == "load" else None

    @property
    def stage(self) -> str:
        return self.steps[-1] if self.steps else "starting"


def run_child(job: BenchJob, job_path: Path, log: Callable[[str], Any]) -> ChildExit:
    """Run the child on ``job`` (already written to ``job_path``), passing each line it prints to
    ``log`` as it comes; the child is killed if this process is interrupted."""
    job.write(job_path)
    with tempfile.TemporaryFile("w+", prefix="buildsys-bench-stderr-") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "buildsys.benchmark.child", str(job_path)],
                                stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL,
                                text=True, bufsize=1)
        try:
            for line in proc.stdout:
                log(line.rstrip("\n"))
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        stderr.seek(0)
        tail = stderr.read()[-3000:]
    progress = Path(job.progress)
    steps = progress.read_text().splitlines() if progress.exists() else []
    return ChildExit(returncode, steps, tail)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
