"""The Ray task: one node's job, run on the Ray node the scheduler picked.

It is a generator, so Ray streams each event to the driver as it is yielded: ``started`` (which
node and host took it, so a crash can name them), ``progress`` (the stage's ``ctx.progress``
lines) and finally ``result``. The stage runs in a process of its own, never in the Ray worker,
so a backend that segfaults fails this node and not the Ray worker: a warm worker of this Ray
worker's pool (``buildsys.WorkerPool``, the local executor's: ``buildsys.workerloop`` processes
that keep torch and the plugins imported between jobs), or, for ``isolated`` stages and with
``pool = false``, a fresh ``python -m buildsys_ray.child`` (``buildsys.worker`` plus a watchdog).
Ray runs one task at a time in a worker process and reuses the process for the next task of
the build, so the pool serves consecutive nodes that land on it; a pooled worker exits with the
Ray worker (``PR_SET_PDEATHSIG`` and a parent watchdog), and one that crashed, was cancelled or
could not be put back is never reused. Inputs and model files come
from the shared store, verified; outputs go back to it, and the result names them by URL,
sha256 and size. Nothing travels through Ray's object store but these small records: Ray
re-runs tasks whose objects it loses, which a nondeterministic engine build must never be.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from buildsys import (BuildsysError, FileRecord, Job, JobSpec, PoolSettings, SharedStore, WorkerPool, collect_result,
                      parse_progress)

POLL_SECONDS = 0.1
LOG_TAIL = 64 * 1024
JOB_FILE, LOG_FILE = "job.json", "worker.log"  # names in this task's own work folder
#: Warm workers one Ray worker keeps: it runs one task at a time.
POOL_CAPACITY = 1

_pool: WorkerPool | None = None  # this Ray worker process's, made by its first pooled task
_pool_environ: dict[str, str] = {}  # the environment its workers were started in


def run_node(job: dict, store_url: str, how: dict | None = None):
    """Run ``job`` here; yield ``started``, ``progress`` ... and one ``result`` event. ``how``:
    what the stage declares about how it runs (``requires``, ``isolated``) and whether the
    build uses the pool (``pool``)."""
    how = how or {}
    yield _started()
    workdir = Path(tempfile.mkdtemp(prefix="buildsys-ray-"))
    handle = None
    try:
        store = SharedStore(store_url)
        job_file = _localize(job, store, workdir)
        handle = _spawn(job_file, workdir, how)
        yield from _follow(handle, workdir / LOG_FILE)
        returncode = handle.poll()
        yield _outcome(returncode, job_file, workdir, store, handle.pid)
    except BuildsysError as exc:  # a damaged or unreachable shared store: this node fails
        yield {"event": "result", "ok": False, "error": str(exc), "log": _tail(workdir / LOG_FILE)}
    finally:  # also on cancel (KeyboardInterrupt raised here by ray.cancel)
        _settle(handle)
        shutil.rmtree(workdir, ignore_errors=True)


def _started() -> dict:
    import ray

    return {"event": "started", "ray_node_id": ray.get_runtime_context().get_node_id(),
            "hostname": socket.gethostname(), "ip": ray.util.get_node_ip_address(), "pid": os.getpid()}


def _localize(job: dict, store: SharedStore, workdir: Path) -> Path:
    """Download inputs and model files into ``workdir``; write the job file the worker reads."""
    spec = JobSpec.from_json(job)
    (workdir / "out").mkdir()
    inputs = []
    for n, item in enumerate(spec.inputs):
        if not item.is_source:
            directory = workdir / "inputs" / str(n)
            _fetch(store, item.files, directory)
            item = replace(item, directory=str(directory))
        inputs.append(item)
    _fetch(store, spec.source.files, workdir / "source")
    source = replace(spec.source, root=str((workdir / "source" / spec.source.root).resolve()))
    # stage state kept across builds (timing caches): this machine's own
    persistent = str(Path(tempfile.gettempdir()) / "buildsys-ray-persistent") if spec.persistent else None
    spec = replace(spec, out_dir=str(workdir / "out"), inputs=tuple(inputs), source=source, persistent=persistent)
    job_file = workdir / JOB_FILE
    spec.write(job_file)
    return job_file


def _fetch(store: SharedStore, files: tuple[FileRecord, ...], directory: Path) -> None:
    for f in files:
        if not store.download(f.sha256, f.size, directory / f.name):
            raise BuildsysError(f"{f.name} (sha256 {f.sha256[:16]}…) is not in the shared store {store.url}",
                                where=f"host {socket.gethostname()}",
                                hint="--store must name one place every node and the driver reach")


def _spawn(job_file: Path, workdir: Path, how: dict):
    """The stage's process: a warm worker of this Ray worker's pool, or a fresh child."""
    if how.get("pool") and not how.get("isolated"):
        job = Job(node_id=str(job_file.parent.name), workdir=workdir, job_file=job_file,
                  requires=tuple(how.get("requires") or ()))
        return _warm_pool().start(job, cwd=tempfile.gettempdir())  # not workdir: it outlives this task
    log = open(workdir / LOG_FILE, "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "buildsys_ray.child", str(job_file)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    finally:
        log.close()


def _warm_pool() -> WorkerPool:
    """This Ray worker's pool; a new one when the environment changed since its workers started:
    Ray sets a task's environment in the Ray worker (``CUDA_VISIBLE_DEVICES``: the GPUs it was
    given), and a warm worker keeps the one it started with."""
    global _pool, _pool_environ
    if _pool is not None and dict(os.environ) != _pool_environ:
        _pool.shutdown()  # its workers are idle: this task has not started one yet
        _pool = None
    if _pool is None:
        _pool, _pool_environ = WorkerPool(PoolSettings(), capacity=POOL_CAPACITY), dict(os.environ)
    return _pool


def _follow(proc, log: Path):
    """Yield the stage's newest progress line every poll until the worker exits (or, pooled,
    answers)."""
    offset = 0
    while True:
        running = proc.poll() is None
        if not log.exists():  # a pooled worker opens the log when it takes the job
            if not running:
                return
            time.sleep(POLL_SECONDS)
            continue
        with open(log, "rb") as f:
            f.seek(offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        offset += len(complete)
        lines = [line for line in complete.decode(errors="replace").splitlines() if parse_progress(line)]
        if lines:
            yield {"event": "progress", "line": lines[-1]}  # coalesced: only the newest matters
        if not running:
            return
        time.sleep(POLL_SECONDS)


def _outcome(returncode: int, job_file: Path, workdir: Path, store: SharedStore, pid: int) -> dict:
    log = workdir / LOG_FILE
    result = collect_result(job_file, returncode)
    if not result.ok:
        return {"event": "result", "ok": False, "error": result.error, "log": _tail(log) + (result.traceback or "")}
    spec = JobSpec.read(job_file)
    files = [_upload(store, path, workdir / "out") for path in sorted((workdir / "out").rglob("*")) if path.is_file()]
    return {"event": "result", "ok": True, "meta": result.meta, "seconds": result.seconds,
            "files": files, "log": _tail(log), "worker_pid": pid,
            "tags": {"node": spec.node, "hardware": spec.hardware, "precision": spec.precision}}


def _upload(store: SharedStore, path: Path, out_dir: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    sha, size = digest.hexdigest(), path.stat().st_size
    return {"name": path.relative_to(out_dir).as_posix(), "uri": store.upload(path, sha, size),
            "sha256": sha, "size": size}


def _tail(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - LOG_TAIL))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _settle(handle) -> None:
    """After the task, or on cancel: a pooled worker that answered goes back to the pool (which
    retires it if it could not put its process back); one still running (cancelled) or dead is
    killed and never reused. A fresh child still running is stopped."""
    if handle is None or _pool is None or isinstance(handle, subprocess.Popen):
        _stop(handle)
    elif handle.poll() == 0:
        _pool.done(handle)
    else:
        _pool.discard(handle)
        handle.proc.wait()


def _stop(proc: subprocess.Popen | None) -> None:
    """Stop the stage's process if it still runs (the task was cancelled): TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
