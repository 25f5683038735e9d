"""``framework: torch.exported``: an existing ``.pt2`` ExportedProgram, named by ``model.entrypoint``.

Planning checks, without importing torch, that the file is a torch.export archive holding a
program (not a ``torch.save`` pickle, not an AOTInductor package) and that the manifest declares
``inputs`` (the program's names and dims are the manifest's to give). ``torch.import`` loads it
with ``torch.export.load`` after importing ``model.imports`` (modules registering custom
operators) and stores it as a ``torch.exported`` artifact, which feeds onnx.export, torch.aoti
and the rest; ``torch.exported.reference`` runs the program on the samples for validation.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from buildsys import BuildsysError, ManifestError, import_files, import_modules, save_reference

from . import inputs as model_inputs
from .flat import flatten, output_names
from .tensors import to_numpy

PT2 = "model.pt2"
_BUILTIN_NAMESPACES = {"aten", "prims", "higher_order", "_operator", "operator", "math", "builtins", "_assert"}


def program_path(model, root: Path) -> Path:
    if not model.entrypoint:
        raise ManifestError("framework 'torch.exported' needs model.entrypoint: the .pt2 file, relative to the manifest",
                            hint="e.g. 'entrypoint: models/net.pt2'")
    path = (Path(root) / model.entrypoint).resolve()
    if not path.is_file():
        raise ManifestError(f"model.entrypoint: .pt2 file '{model.entrypoint}' does not exist (looked in {root})",
                            hint="name a file saved with torch.export.save, relative to the manifest's folder")
    return path


def fingerprint(model, root: Path) -> list[Path]:
    return [program_path(model, root), *import_files(model.imports, root)]


def signature(model, root: Path) -> list[dict]:
    """Plan-time checks (no torch): an ExportedProgram archive, and declared inputs."""
    path = program_path(model, root)
    kind = archive_kind(path)
    if kind != "program":
        raise ManifestError(f"model.entrypoint: '{model.entrypoint}' is not a torch.export ExportedProgram ({kind})",
                            hint="save the program with torch.export.save(torch.export.export(model, args), path)")
    if not model.inputs:
        raise ManifestError("framework 'torch.exported' needs model.inputs: the program's inputs in order "
                            "(name, dtype, shape), with every dynamic dim in model.dims",
                            hint="e.g. inputs: [{name: x, dtype: float32, shape: [batch, 8]}]")
    return []


def archive_kind(path: Path) -> str:
    """``program`` for a torch.export archive holding a program, else what the file is instead."""
    if not zipfile.is_zipfile(path):
        return "not a zip archive, as torch.export.save writes"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        formats = [n for n in names if n.endswith("/archive_format") or n == "archive_format"]
        if not formats or archive.read(formats[0]).strip() != b"pt2":
            return "a zip archive without a pt2 archive_format: torch.save's format?"
        if not any(re.search(r"(^|/)models/[^/]+\.json$", n) for n in names):
            return "a pt2 archive without a program: an AOTInductor package?"
    return "program"


def operators(path: Path) -> set[str]:
    """``ns::name`` of every operator the archived program calls outside torch's own namespaces."""
    found = set()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if re.search(r"(^|/)models/[^/]+\.json$", name):
                text = archive.read(name).decode("utf-8", errors="replace")
                found.update(f"{ns}::{op}" for ns, op in re.findall(r"torch\.ops\.(\w+)\.(\w+)", text)
                             if ns not in _BUILTIN_NAMESPACES)
    return found


def unregistered(path: Path) -> list[str]:
    import torch

    missing = []
    for qualname in sorted(operators(path)):
        ns, op = qualname.split("::")
        try:
            getattr(getattr(torch.ops, ns), op)
        except (AttributeError, RuntimeError):
            missing.append(qualname)
    return missing


def load_program(path: Path, shown: str):
    """``torch.export.load``, its raw "error when deserializing" turned into one line."""
    import torch

    try:
        return torch.export.load(str(path))
    except Exception as exc:
        missing = unregistered(path) if archive_kind(path) == "program" else []
        if missing:
            raise BuildsysError(f"cannot load {shown}: it calls custom operator(s) {', '.join(missing)}, which no "
                                "imported module registers",
                                hint="list the module that registers them under model.imports in the manifest "
                                     "(e.g. 'imports: [models/ops.py]')") from None
        raise BuildsysError(f"cannot load {shown} with torch.export.load: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:300]}",
                            hint="was it saved by torch.export.save with a compatible torch?") from None


def load(model, root: Path):
    """The ExportedProgram, after importing the modules that register its custom operators."""
    path = program_path(model, root)
    import_modules(model.imports, root)
    return load_program(path, model.entrypoint)


def run_import(ctx, inputs, options) -> dict:
    """``torch.exported.file`` -> ``torch.exported``: the loaded (so loadable) program, as given."""
    import torch

    program = ctx.load_model()
    shutil.copyfile(program_path(ctx.model, ctx.root), Path(ctx.out_dir) / PT2)
    with torch.no_grad():  # names as the torch source gives them: 'output', dict keys, output_N
        names = output_names(program.module()(*model_inputs.example_inputs(ctx.model)))
    return {"primary": PT2, "input_names": [s.name for s in ctx.model.inputs], "output_names": names,
            "dynamic_dims": model_inputs.dynamic_dims(ctx.model),
            "range_constraints": {str(k): str(v) for k, v in program.range_constraints.items()},
            "custom_ops": sorted(operators(Path(ctx.out_dir) / PT2))}


def run_reference(ctx, inputs, options) -> dict:
    """The program's outputs on the samples (what validation compares every artifact with)."""
    import torch

    module = ctx.load_model().module()
    samples = model_inputs.samples(ctx.model, ctx.root)
    with torch.no_grad():
        raw = [module(*sample) for sample in samples]
    return save_reference(ctx.out_dir, [[to_numpy(t) for t in s] for s in samples],
                          [[to_numpy(t) for t in flatten(r)] for r in raw],
                          [s.name for s in ctx.model.inputs], output_names(raw[0]))
