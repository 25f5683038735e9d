"""A pooled worker: ``python -m buildsys.workerloop``, started by the local executor's pool
(``buildsys.pool``).

It reads one ``WorkerRequest`` line per job on the stdin it was started with and runs the job
exactly as a one-job worker would (``run_worker``: the result goes to result.json beside the job
file, everything the stage prints to that job's worker.log, the working directory is the job's
folder, stdin is empty). Then it puts the process back the way a fresh one would find it and
answers one ``WorkerReply`` line on the stdout it was started with.

Kept between jobs: imported modules (torch is imported once per worker, not once per stage) and
loaded plugin managers. Put back after each job: the working directory, ``os.environ``,
``sys.path``, the user's modules (anything imported from the manifest's folder or from a folder
the job put on ``sys.path``, so a model file runs its module-level code again, as in a fresh
process), and what plugins reset through ``buildsys_worker_reset`` (torch: its RNG seed and
compile caches). A job that leaves state the reset cannot undo is the stage's to declare
``isolated``: such stages never reach a pooled worker.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .jobs import LOG_FILE, POOL_PARENT_ENV, JobSpec, WorkerReply, WorkerRequest
from .worker import run_worker

_PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.2


def serve() -> int:
    """Run jobs from stdin until it closes (the pool retires the worker by closing it)."""
    _die_with_parent()
    control = os.fdopen(os.dup(1), "w", buffering=1)
    requests = os.fdopen(os.dup(0), "r")
    _input_from(os.devnull)
    _output_to(os.devnull)
    loaded: dict = {}
    baseline = ProcessState.capture()
    for line in requests:
        request = WorkerRequest.from_line(line)
        clean = _run_one(Path(request.job), loaded, baseline)
        baseline = baseline.keeping(sys.modules)  # what stayed (torch...) is not looked at again
        imported = tuple(sorted(n for n in sys.modules if "." not in n and not n.startswith("_")))
        control.write(WorkerReply(request.job, os.getpid(), rss_mb(), clean, imported).to_line())
    return 0


def _run_one(job_path: Path, loaded: dict, baseline: ProcessState) -> bool:
    """Run one job with its output in its log; return whether the process was put back clean."""
    _output_to(job_path.with_name(LOG_FILE), truncate=True)
    try:
        os.chdir(job_path.parent)
        run_worker(job_path, loaded)
        return _reset(job_path, loaded, baseline)
    finally:
        _output_to(os.devnull)


def _reset(job_path: Path, loaded: dict, baseline: ProcessState) -> bool:
    try:
        roots = [Path(JobSpec.read(job_path).source.root)]
    except Exception:  # unreadable job: run_worker already said so in its result
        roots = []
    protected = {"buildsys"} | {_top(p.__name__) for pm, _ in loaded.values() for p in pm.get_plugins()
                                if hasattr(p, "__name__")}
    baseline.restore(roots, protected)
    try:
        for pm, _ in loaded.values():
            pm.hook.buildsys_worker_reset()
        return True
    except Exception:  # a framework that cannot be put back: the pool retires this worker
        traceback.print_exc()
        return False


@dataclass(frozen=True)
class ProcessState:
    """What a job may change in the process and the next job must find as it was."""

    cwd: str
    environ: dict
    path: tuple
    modules: frozenset

    @classmethod
    def capture(cls) -> ProcessState:
        return cls(os.getcwd(), dict(os.environ), tuple(sys.path), frozenset(sys.modules))

    def keeping(self, modules) -> ProcessState:
        """This state with ``modules`` (those a reset kept) as the known ones."""
        return ProcessState(self.cwd, self.environ, self.path, frozenset(modules))

    def restore(self, user_roots: list[Path], protected: set[str]) -> None:
        os.chdir(self.cwd)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        added = [Path(p) for p in sys.path if p and p not in self.path]
        sys.path[:] = self.path
        roots = [os.path.realpath(r) + os.sep for r in user_roots + added]
        installed = [os.path.realpath(p) + os.sep for p in _installed_roots()]
        for name in [n for n in sys.modules if n not in self.modules and _top(n) not in protected]:
            if _is_user_module(name, sys.modules.get(name), roots, installed):
                del sys.modules[name]
        importlib.invalidate_caches()


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _is_user_module(name: str, module, roots: list[str], installed: list[str]) -> bool:
    """A module of the user's model code: a file entrypoint's, or one imported from under the
    manifest's folder or a folder a job added to ``sys.path`` (``roots``) — never one from the
    interpreter's or the environment's own folders (``installed``)."""
    if name.startswith("buildsys_model_"):
        return True
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = os.path.realpath(file)
    return not path.startswith(tuple(installed)) and path.startswith(tuple(roots))


def _installed_roots() -> list[str]:
    import sysconfig

    paths = sysconfig.get_paths()
    return sorted({sys.prefix, sys.base_prefix, paths["purelib"], paths["platlib"], paths["stdlib"]})


def _input_from(path: str) -> None:
    """A stage reads end-of-file from stdin, as in a one-job worker, never the pool's requests:
    transformers asks on stdin before it runs a folder's code (and waits 15 s for an answer), and
    what it read there would be a job line lost."""
    fd = os.open(path, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)


def _output_to(path: str | Path, truncate: bool = False) -> None:
    """Point this process's stdout and stderr (the file descriptors, so a backend's C code
    follows too) at ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
    fd = os.open(path, flags, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def rss_mb() -> float:
    """This process's resident memory now, in MB (its peak where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _die_with_parent() -> None:
    """Exit with the process that started this worker (the build, or a Ray worker), even when
    it dies by SIGKILL and mid-job: Linux kills this worker then (``PR_SET_PDEATHSIG``), and a
    watchdog thread that polls the parent id catches it everywhere else, and where the
    signal cannot fire (it fires when the spawning *thread* ends, not the process)."""
    parent = int(os.environ.pop(POOL_PARENT_ENV, "0") or 0)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:
        os._exit(1)
    if parent:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watchdog").start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


if __name__ == "__main__":
    sys.exit(serve())
