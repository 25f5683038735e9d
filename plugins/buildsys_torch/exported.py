"""``framework: torch.exported``: an existing ``.pt2`` ExportedProgram, named by ``model.entrypoint``.

Planning checks, without importing torch, that the file is a torch.export archive holding a
program (not a ``torch.save`` pickle, not an AOTInductor package). The inputs come from the
program itself (``describe``: its serialized graph, read as JSON — names, dtypes, shapes, one dim
per symbol named ``<input>_dim<axis>`` where it first appears, min/opt/max from its range
constraints and example size); the manifest's ``inputs`` win when it gives them, its ``dims``
override any range. ``torch.import`` loads it
with ``torch.export.load`` after importing ``model.imports`` (modules registering custom
operators) and stores it as a ``torch.exported`` artifact, which feeds onnx.export, torch.aoti
and the rest; ``torch.exported.reference`` runs the program on the samples for validation.
"""

from __future__ import annotations

import json
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


def checked_path(model, root: Path) -> Path:
    """The .pt2 file, checked (no torch) to be an ExportedProgram archive."""
    path = program_path(model, root)
    kind = archive_kind(path)
    if kind != "program":
        raise ManifestError(f"model.entrypoint: '{model.entrypoint}' is not a torch.export ExportedProgram ({kind})",
                            hint="save the program with torch.export.save(torch.export.export(model, args), path)")
    return path


def signature(model, root: Path) -> list[dict]:
    """Plan-time checks (no torch): an ExportedProgram archive, and inputs (``describe`` fills them)."""
    checked_path(model, root)
    if not model.inputs:
        raise ManifestError("framework 'torch.exported' needs model.inputs: the program's inputs in order "
                            "(name, dtype, shape), with every dynamic dim in model.dims",
                            hint="e.g. inputs: [{name: x, dtype: float32, shape: [batch, 8]}]")
    return []


# torch._export.serde.schema.ScalarType -> manifest dtype (the ones a manifest input can have)
SCALAR_TYPES = {1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32",
                8: "float64", 12: "bool", 13: "bfloat16"}
SYMBOL = re.compile(r"(?:Symbol\(')?(\w+?)(?:'.*\))?")


def describe(model, root: Path):
    """``model`` with the program's own inputs and dims (see the module docstring)."""
    path = checked_path(model, root)
    if model.inputs:
        return model
    try:
        inputs, dims, unbounded = program_inputs(path, model.entrypoint)
    except (KeyError, TypeError, AttributeError) as exc:  # a serialization this reader does not know
        raise ManifestError(f"model.entrypoint: '{model.entrypoint}' has a program layout this reader does not know "
                            f"({type(exc).__name__}: {exc})", hint="declare model.inputs and model.dims") from None
    given = model.dims or {}
    for dim, (name, axis, low) in unbounded.items():
        if dim not in given:
            raise ManifestError(f"input '{name}' axis {axis} is the dynamic dim '{dim}', which the program leaves "
                                "without an upper bound",
                                hint=f"add under model.dims:  {dim}: {{min: {low}, opt: {max(low, 2)}, max: 64}}")
    block = model.model_dump(mode="json", exclude_none=True)
    block["inputs"] = inputs
    block["dims"] = {**dims, **block.get("dims", {})}
    return type(model).model_validate(block)


def program_inputs(path: Path, shown: str) -> tuple[list[dict], dict, dict]:
    """(inputs, dims, unbounded dims: {dim: (input, axis, min)}) read from the archive's program."""
    doc = _program_json(path, shown)
    graph = doc["graph_module"]
    tensors, ranges = graph["graph"]["tensor_values"], doc.get("range_constraints") or {}
    inputs, dims, unbounded, named = [], {}, {}, {}
    for spec in graph["signature"]["input_specs"]:
        if "user_input" not in spec:
            continue  # parameters, buffers, constants
        arg = spec["user_input"]["arg"]
        if "as_tensor" not in arg:
            raise ManifestError(f"model.entrypoint: '{shown}' takes a non-tensor input ({next(iter(arg))})",
                                hint="declare model.inputs (the program's tensor inputs, in order) and model.dims")
        name = arg["as_tensor"]["name"]
        meta = tensors[name]
        dtype = SCALAR_TYPES.get(meta["dtype"])
        if dtype is None:
            raise ManifestError(f"model.entrypoint: '{shown}' input '{name}' has a dtype a manifest input cannot "
                                f"have (serialized type {meta['dtype']})", hint="declare model.inputs and model.dims")
        shape = []
        for axis, size in enumerate(meta["sizes"]):
            if "as_int" in size:
                shape.append(size["as_int"])
                continue
            expr = size["as_expr"]["expr_str"]
            match = SYMBOL.fullmatch(expr)
            if match is None or match.group(1) not in ranges:
                readable = re.sub(r"Integer\((-?\d+)\)", r"\1", re.sub(r"Symbol\('(\w+)'[^)]*\)", r"\1", expr))
                raise ManifestError(f"model.entrypoint: '{shown}' input '{name}' axis {axis} has size {readable}, "
                                    "derived from another dim", hint="declare model.inputs and model.dims")
            symbol = match.group(1)
            if symbol not in named:
                dim = named[symbol] = f"{name}_dim{axis}"
                low, high = ranges[symbol].get("min_val") or 0, ranges[symbol].get("max_val")
                example = size["as_expr"].get("hint", {}).get("as_int", low)
                if high is None or high >= 2 ** 31:
                    unbounded[dim] = (name, axis, low)
                    high = max(example, low)
                dims[dim] = {"min": low, "opt": min(max(example, low), high), "max": high}
            shape.append(named[symbol])
        inputs.append({"name": name, "dtype": dtype, "shape": shape})
    return inputs, dims, unbounded


def _program_json(path: Path, shown: str) -> dict:
    with zipfile.ZipFile(path) as archive:
        found = [n for n in archive.namelist() if n.endswith("models/model.json")]
        if not found:
            found = [n for n in archive.namelist() if "/models/" in n and n.endswith(".json")]
        if len(found) != 1:
            raise ManifestError(f"model.entrypoint: '{shown}' holds {len(found)} programs; one is read as the model",
                                hint="declare model.inputs and model.dims")
        try:
            return json.loads(archive.read(found[0]))
        except (ValueError, KeyError) as exc:
            raise ManifestError(f"model.entrypoint: '{shown}' has a program this torch.export reader cannot read "
                                f"({type(exc).__name__})", hint="declare model.inputs and model.dims") from None


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


def module_on(path: Path, device: str):
    """The saved program's module on ``device``: off the CPU, its CPU device assertions and
    factories (the program was exported there) pointed at ``device`` (``cudagraph.retarget``)."""
    module = load_program(path, path.name).module()
    if device != "cpu":
        from .cudagraph import retarget

        retarget(module, device)
    return module.to(device)


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
