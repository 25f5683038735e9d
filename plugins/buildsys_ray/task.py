"""The Ray task: one node's job, run on the Ray node the scheduler picked.

It is a generator, so Ray streams each event to the driver as it is yielded: ``started`` (which
node and host took it, so a crash can name them), ``progress`` (the stage's ``ctx.progress``
lines) and finally ``result``. The stage runs in its own process (``python -m
buildsys_ray.child``, i.e. ``buildsys.worker``) exactly as the local executor runs it, so a
backend that segfaults fails this node and not the Ray worker. Inputs and model files come
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

from buildsys import BuildsysError, FileRecord, JobSpec, SharedStore, collect_result, parse_progress

POLL_SECONDS = 0.1
LOG_TAIL = 64 * 1024
JOB_FILE, LOG_FILE = "job.json", "worker.log"  # names in this task's own work folder


def run_node(job: dict, store_url: str):
    """Run ``job`` here; yield ``started``, ``progress`` ... and one ``result`` event."""
    yield _started()
    workdir = Path(tempfile.mkdtemp(prefix="buildsys-ray-"))
    proc = None
    try:
        store = SharedStore(store_url)
        job_file = _localize(job, store, workdir)
        proc = _spawn(job_file, workdir)
        yield from _follow(proc, workdir / LOG_FILE)
        yield _outcome(proc.returncode, job_file, workdir, store)
    except BuildsysError as exc:  # a damaged or unreachable shared store: this node fails
        yield {"event": "result", "ok": False, "error": str(exc), "log": _tail(workdir / LOG_FILE)}
    finally:  # also on cancel (KeyboardInterrupt raised here by ray.cancel)
        _stop(proc)
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


def _spawn(job_file: Path, workdir: Path) -> subprocess.Popen:
    log = open(workdir / LOG_FILE, "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "buildsys_ray.child", str(job_file)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    finally:
        log.close()


def _follow(proc: subprocess.Popen, log: Path):
    """Yield the stage's newest progress line every poll until the worker exits."""
    offset = 0
    while True:
        running = proc.poll() is None
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


def _outcome(returncode: int, job_file: Path, workdir: Path, store: SharedStore) -> dict:
    log = workdir / LOG_FILE
    result = collect_result(job_file, returncode)
    if not result.ok:
        return {"event": "result", "ok": False, "error": result.error, "log": _tail(log) + (result.traceback or "")}
    spec = JobSpec.read(job_file)
    files = [_upload(store, path, workdir / "out") for path in sorted((workdir / "out").rglob("*")) if path.is_file()]
    return {"event": "result", "ok": True, "meta": result.meta, "seconds": result.seconds,
            "files": files, "log": _tail(log),
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
