"""The worker: runs one stage of a build, in a process of its own.

``run_worker(job_path)`` (or ``python -m buildsys.worker JOB.json``) reads the ``JobSpec``, loads
the same plugins as the build, runs the stage with its inputs and writes the ``JobResult``
beside the job file. Running each stage in its own process means a backend that segfaults or
leaks fails one node, not the build, and the build's process never imports an ML framework.
Part of the public API: an executor that runs jobs elsewhere (Ray) calls ``run_worker`` there.

``python -m buildsys.workerloop`` is a pooled worker instead: it takes job after job over a
pipe, keeping its imports and plugin managers between them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from . import companions, plugins
from .context import StageContext
from .errors import BuildsysError
from .hardware import CPU_TARGET, cpu_target
from .jobs import RESULT_FILE, JobResult, JobSpec


def run_worker(job_path: str | Path, loaded: dict | None = None) -> int:
    """Run the job at ``job_path``; write its result beside it. Returns the process exit status:
    0 when a result was written (success or a handled error). ``loaded``: plugin managers kept
    across jobs by a pooled worker (by plugin configuration); None loads them afresh."""
    job_path = Path(job_path)
    try:
        job = JobSpec.read(job_path)
    except BuildsysError as exc:
        JobResult(ok=False, error=str(exc), error_type=type(exc).__name__).write(job_path.with_name(RESULT_FILE))
        return 0
    result = run_job(job, loaded)
    _trace_imports(job)
    result.write(job_path.with_name(RESULT_FILE))
    return 0


def run_job(job: JobSpec, loaded: dict | None = None) -> JobResult:
    """Run the stage ``job`` describes; return its result (never raises)."""
    started = time.perf_counter()
    try:
        meta = _run(job, loaded)
        return JobResult(ok=True, meta=meta or {}, seconds=time.perf_counter() - started)
    except BuildsysError as exc:
        return JobResult(ok=False, error=str(exc), error_type=type(exc).__name__)
    except Exception as exc:  # a plugin bug: keep the traceback for the log, one line for the user
        return JobResult(ok=False, error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__,
                         traceback=traceback.format_exc())


def _run(job: JobSpec, loaded: dict | None) -> dict | None:
    pm, catalog = _plugins(job, {} if loaded is None else loaded)
    stage = catalog.stage(job.stage)
    stage.check_requirements()
    options = stage.options.model_validate(job.options) if stage.options else None
    ctx = StageContext.for_job(job, catalog, pm.hook)
    inputs = [i.artifact() for i in job.inputs]
    meta = stage.run(ctx, inputs, options)
    if meta is not None and not isinstance(meta, dict):
        raise BuildsysError(f"stage '{stage.name}' returned {type(meta).__name__}, expected a dict or None")
    json.dumps(meta)  # fail here, naming the stage, rather than when the build records it
    carried = companions.carry(ctx, catalog.sources.get(ctx.model.framework), stage.produces, inputs)
    if carried:
        meta = dict(meta or {}, **{companions.COMPANION_FILES: carried})
    target = cpu_target() if job.hardware.startswith("cpu-") else None
    if target:  # compiled on and for this CPU: say which (hardware.CPU_TARGET)
        meta = dict(meta or {}, **{CPU_TARGET: target})
    return meta


def _plugins(job: JobSpec, loaded: dict) -> tuple[plugins.PluginManager, plugins.Catalog]:
    """The plugin manager and catalog of the job's plugin configuration (kept in ``loaded``)."""
    key = json.dumps(job.plugins, sort_keys=True)
    if key not in loaded:
        pm = plugins.load(plugins.PluginConfig.from_json(job.plugins))
        loaded[key] = (pm, plugins.Catalog.collect(pm))
    return loaded[key]


def _trace_imports(job: JobSpec) -> None:
    """With BUILDSYS_TRACE_IMPORTS=FILE, append the modules this worker imported (for tests)."""
    trace = os.environ.get("BUILDSYS_TRACE_IMPORTS")
    if trace:
        with open(trace, "a") as f:
            f.write(json.dumps({"process": "worker", "node": job.node, "pid": os.getpid(),
                                "modules": sorted(sys.modules)}) + "\n")


def main(argv: list[str]) -> int:
    return run_worker(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
