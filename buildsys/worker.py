"""The worker process: runs one stage for the local executor.

``python -m buildsys.worker JOB.json`` loads the same plugins as the driver, runs the stage
with its inputs and writes ``result.json`` beside the job. Running each stage in its own process
means a backend that segfaults or leaks fails one node, not the build, and the driver process
never imports an ML framework. Exit status: 0 when a result was written (success or a handled
error), anything else means the worker died and the driver reports how.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from . import plugins
from .context import StageContext
from .errors import BuildsysError
from .specs import InputArtifact


def run_job(job: dict) -> dict:
    """Run the stage described by ``job``; return the result record (never raises)."""
    started = time.perf_counter()
    try:
        meta = _run(job)
        return {"ok": True, "meta": meta or {}, "seconds": time.perf_counter() - started}
    except BuildsysError as exc:
        return {"ok": False, "error": str(exc), "type": type(exc).__name__}
    except Exception as exc:  # a plugin bug: keep the traceback for the log, one line for the user
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__,
                "traceback": traceback.format_exc()}


def _run(job: dict) -> dict | None:
    pm = plugins.load(plugins.PluginConfig.from_json(job["plugins"]))
    specs = plugins.Specs.collect(pm)
    stage = specs.stage(job["stage"])
    stage.check_requirements()
    options = stage.options.model_validate(job["options"]) if stage.options else None
    ctx = _context(job, specs)
    ctx._hook = pm.hook
    inputs = [_input(i) for i in job["inputs"]]
    meta = stage.run(ctx, inputs, options)
    if meta is not None and not isinstance(meta, dict):
        raise BuildsysError(f"stage '{stage.name}' returned {type(meta).__name__}, expected a dict or None")
    json.dumps(meta)  # fail here, naming the stage, rather than when the driver records it
    return meta


def _context(job: dict, specs) -> StageContext:
    from .manifest import ModelSpec

    source = job["source"]
    model = ModelSpec.model_validate(source["model"])
    root = Path(source["root"])
    spec = specs.source(model.framework)
    return StageContext(out_dir=Path(job["out_dir"]), stage=job["stage"], node_id=job["node"],
                        targets=job["targets"], hardware=job["hardware"], precision=job["precision"],
                        model=model, root=root, manifest=source["manifest"],
                        _load_model=lambda: spec.load(model, root), _runners=dict(specs.runners),
                        _persistent_root=Path(job["persistent"]) if job.get("persistent") else None)


def _input(data: dict) -> InputArtifact:
    directory = Path(data["directory"]) if data["directory"] else None
    return InputArtifact(kind=data["kind"], precision=data["precision"], hardware=data["hardware"],
                         directory=directory,
                         files={name: directory / name for name in data["files"]} if directory else {},
                         meta=data["meta"])


def _trace_imports(job: dict) -> None:
    """With BUILDSYS_TRACE_IMPORTS=FILE, append the modules this worker imported (for tests)."""
    trace = os.environ.get("BUILDSYS_TRACE_IMPORTS")
    if trace:
        with open(trace, "a") as f:
            f.write(json.dumps({"process": "worker", "node": job["node"], "modules": sorted(sys.modules)}) + "\n")


def main(argv: list[str]) -> int:
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text())
    result = run_job(job)
    _trace_imports(job)
    tmp = job_path.with_name("result.json.tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(job_path.with_name("result.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
