"""The ``triton`` stage: an artifact -> a Triton model repository around it.

Writes ``<model_name>/config.pbtxt`` and ``<model_name>/1/``: the model file under the name
its native backend loads (``model.onnx``, ``model.plan``), or for the python backend
``model.py`` and the input artifact in ``artifact/`` (its files and an ``artifact.json`` that
``buildsys.load`` reads and checks). The repository is the target's artifact: every file,
subfolders included, is checksummed in its artifact.json.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from buildsys import StageFailed

from . import config, signature
from .options import check_model_name

VERSION_FOLDER = "1"
CONFIG = "config.pbtxt"
MODEL_PY = "model.py"


def run_repository(ctx, inputs, options) -> dict:
    """The stage's ``run``; returns what artifact.json records (config, outputs, why this backend)."""
    source = inputs[0]
    how = config.serving(source.kind, options.backend)
    name = _model_name(ctx, options)
    outputs, origin = signature.outputs(source, ctx.model, _runner(ctx, source.kind))
    if outputs is None and how.python:
        raise StageFailed(f"cannot tell the outputs of the {source.kind} input for the python backend's config: {origin}",
                          hint="build the repository on a host that can run the input, or from an ONNX target")
    try:
        cfg = config.model_config(name, how, ctx.model, outputs, ctx.hardware, ctx.precision, options,
                                  signature.inputs(ctx.model))
    except ValueError as exc:
        raise StageFailed(f"target '{ctx.target}': {exc}") from None
    ctx.log(f"{'python backend' if how.python else how.platform}: {how.reason}")
    version = Path(ctx.out_dir) / name / VERSION_FOLDER
    version.mkdir(parents=True)
    if how.python:
        _write_python_model(ctx, source, outputs, version)
    else:
        _copy_model(source, how.model_file, version)
    (Path(ctx.out_dir) / name / CONFIG).write_text(config.render(cfg))
    return _metadata(name, how, cfg, source, outputs, origin)


def _model_name(ctx, options) -> str:
    if options.model_name is not None:
        return options.model_name
    try:
        return check_model_name(ctx.manifest.get("name") or ctx.target)
    except ValueError as exc:
        raise StageFailed(f"the manifest's name {exc}", hint="set options: {triton: {model_name: NAME}}") from None


def _runner(ctx, kind: str):
    try:
        return ctx.runner(kind)
    except LookupError:
        return None


def _copy_model(source, model_file: str, version: Path) -> None:
    """The primary file under the name the backend loads; companions (external data) keep theirs."""
    primary = source.primary.name
    for filename, path in source.files.items():
        target = version / (model_file if filename == primary else filename)
        target.parent.mkdir(parents=True, exist_ok=True)  # companion files live in folders (tokenizer/)
        shutil.copyfile(path, target)


def _write_python_model(ctx, source, outputs, version: Path) -> None:
    shutil.copyfile(Path(__file__).with_name("python_model.py"), version / MODEL_PY)
    folder = version / "artifact"
    files = []
    primary = source.meta.get("primary")
    for filename, path in sorted(source.files.items()):
        target = folder / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files.append({"name": filename, "sha256": _sha256(target), "size": target.stat().st_size,
                      "role": "primary" if filename == primary else "data"})
    record = wrapped_record(ctx, source, outputs, files)
    (folder / "artifact.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def wrapped_record(ctx, source, outputs, files: list[dict]) -> dict:
    """The wrapped artifact's artifact.json, in the shape of a built target's (what buildsys.load reads)."""
    model = ctx.model
    return {
        "schema": 1, "name": ctx.manifest.get("name"), "version": ctx.manifest.get("version"),
        "target": ctx.target, "kind": source.kind, "format": source.kind, "precision": source.precision,
        "hardware": source.hardware,
        "signature": {"inputs": [i.model_dump(mode="json") for i in model.inputs],
                      "dims": {k: v.model_dump(mode="json", exclude_none=True) for k, v in model.dims.items()},
                      "outputs": [o.to_json() for o in outputs] if outputs else None},
        "meta": {k: v for k, v in source.meta.items() if k != "primary"},
        "validation": {"status": "not run", "reason": "wrapped in a Triton repository: the target it was "
                                                      "built from holds its validation"},
        "files": files,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metadata(name: str, how, cfg: dict, source, outputs, origin: str) -> dict:
    return {
        "model_name": name, "config": cfg, "config_file": f"{name}/{CONFIG}",
        "platform": how.platform, "backend": "python" if how.python else None, "backend_reason": how.reason,
        "max_batch_size": cfg["max_batch_size"],
        "outputs": [o.to_json() for o in outputs] if outputs else None, "outputs_from": origin,
        "input_names": source.meta.get("input_names"),
        "output_names": [o.name for o in outputs] if outputs else source.meta.get("output_names"),
        "wrapped": {"kind": source.kind, "precision": source.precision, "hardware": source.hardware},
    }
