"""What ``buildsys.manifest`` checks beyond the schema, and how it reports what it finds.

Reading the file within its size bound, the size of names and paths, whether the files a
manifest names exist, and turning pydantic's errors into ``ManifestError`` s at
``file:line:column``. The limits, and why each is where it is:

- ``MAX_MANIFEST_BYTES`` (1 MiB): checked before parsing; real manifests are a few KiB.
- ``MAX_TARGETS`` (1,000): planning time grows with targets (2,000 took 14 s to plan).
- ``MAX_NAME`` (64), ``MAX_VERSION`` (40), ``MAX_HARDWARE_TAG`` (48): these three are the
  manifest's share of an artifact's file name, ``<name>-<version>-<format>-<precision>-
  <tooltag>-<hardware>.<ext>``; at most 152 bytes, which leaves about 100 of the 255 a file
  system allows for what plugins add (58 at most today).
- ``MAX_TARGET_NAME`` (64): a directory name and part of registry names.
- ``MAX_PATH_BYTES`` (1,024) and ``MAX_PATH_COMPONENT_BYTES`` (255, the usual file system
  limit) for the files and entrypoints under ``model:`` and ``calibration.data``, which must
  also be non-empty and free of control characters: asking the OS about a longer one raised
  ENAMETOOLONG, a NUL raised ValueError, and both reached the user as internal errors.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import ManifestError

MAX_MANIFEST_BYTES = 1 << 20
MAX_TARGETS = 1000
MAX_NAME = 64
MAX_VERSION = 40
MAX_TARGET_NAME = 64
MAX_HARDWARE_TAG = 48
MAX_PATH_BYTES = 1024
MAX_PATH_COMPONENT_BYTES = 255

# An entrypoint with one of these suffixes (or a '/') names a file, checked to exist at load;
# anything else is an importable 'package.module:function', resolved only when a stage runs.
FILE_SUFFIXES = (".py", ".txt", ".json", ".yaml", ".safetensors", ".pt", ".pth", ".bin", ".npz",
                 ".npy", ".msgpack", ".onnx", ".pt2")
_DOTTED = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
_IMPORTABLE = re.compile(rf"{_DOTTED}(?::{_DOTTED})?")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# -- reading ---------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The manifest's text; too large or not UTF-8 is refused before any parsing."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}", hint="pass the path of a YAML manifest") from None
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB", where=f"{path}:1:1",
                            hint="a manifest names files and settings; keep data in the files it names")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc.start, path) from None
    # Universal newlines, as Path.read_text gave before: every value stays the same.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _not_utf8(data: bytes, offset: int, path: Path) -> ManifestError:
    before = data[:offset]
    line = before.count(b"\n") + 1
    column = len(before[before.rfind(b"\n") + 1:].decode("utf-8")) + 1
    return ManifestError(f"the manifest is not UTF-8 text: byte 0x{data[offset]:02x} cannot be decoded",
                         where=f"{path}:{line}:{column}", hint="save the file as UTF-8")


# -- field checks (called by the schema's validators) ----------------------------------------


def check_length(value: str, what: str, limit: int, why: str) -> str:
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; at most {limit} ({why})")
    return value


def check_path_text(value: str) -> str:
    """A path or entrypoint the operating system can be asked about without raising."""
    if not value.strip():
        raise ValueError("is empty; name a file relative to the manifest, or 'package.module:function'")
    if bad := _CONTROL.search(value):
        raise ValueError(f"holds control character {bad.group()!r} at character {bad.start() + 1}; remove it")
    if len(value.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"is {len(value.encode())} bytes long; paths may be at most {MAX_PATH_BYTES} bytes")
    longest = max(value.split("/"), key=lambda part: len(part.encode()))
    if len(longest.encode()) > MAX_PATH_COMPONENT_BYTES:
        raise ValueError(f"has a name of {len(longest.encode())} bytes ('{longest[:16]}...'); file systems "
                         f"allow at most {MAX_PATH_COMPONENT_BYTES} bytes between slashes")
    return value


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
    about_key = error["type"] == "extra_forbidden" or error["loc"][-1:] == ("[key]",)
    key_pos = positions.get(loc + ("<key>",)) if about_key else None
    line, col = key_pos or _nearest(positions, loc)
    dotted = ".".join(_short(str(p)) for p in loc) or "(top level)"
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


def _short(key: str) -> str:
    return key if len(key) <= 40 else key[:37] + "..."


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
    return _check_model_named(manifest) + _check_dims(manifest) + _check_model_files(manifest) + _check_from(manifest)


def _check_model_named(manifest) -> list[ManifestError]:
    model = manifest.model
    if model.entrypoint is None and model.id is None:
        return [ManifestError("model names no model: model.entrypoint and model.id are both empty; give "
                              "'entrypoint' (code or a model file) or 'id' (a model the source resolves by name)",
                              where=manifest.where("model", "entrypoint"),
                              hint="e.g. 'entrypoint: models/net.py:build' or 'id: sentence-transformers/all-MiniLM-L6-v2'")]
    return []


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


def _check_model_files(manifest) -> list[ManifestError]:
    problems = []
    for key in ("entrypoint", "weights", "samples"):
        value = getattr(manifest.model, key)
        if value is not None:
            problems += _model_file_problems(manifest, key, value, manifest.where("model", key))
    return problems


def _model_file_problems(manifest, key: str, value: str, where: str) -> list[ManifestError]:
    try:
        problem = _model_file_problem(manifest, key, value)
    # check_path_text passed the text; this is what the file system still refuses (ELOOP, EACCES).
    except (OSError, ValueError) as exc:
        return [ManifestError(f"model.{key} '{value[:80]}' cannot be looked up: "
                              f"{getattr(exc, 'strerror', None) or exc}", where=where,
                              hint="use a plain path relative to the manifest's folder")]
    if problem is None:
        return []
    message, hint = problem
    return [ManifestError(message, where=where, hint=hint)]


def _model_file_problem(manifest, key: str, value: str) -> tuple[str, str] | None:
    """(message, hint) when the file or entrypoint ``value`` cannot be what ``key`` needs."""
    if key == "weights" and value.startswith("package:"):
        return _package_weights_problem(manifest, value)
    file_part = value if key == "weights" else value.split(":", 1)[0]
    if "/" in file_part or file_part.endswith(FILE_SUFFIXES):
        if not (manifest.root / file_part).is_file():
            return (f"model.{key} file '{file_part}' does not exist (looked in {manifest.root})",
                    "paths are relative to the manifest's folder")
    elif key != "weights" and not _IMPORTABLE.fullmatch(value) and not (manifest.root / value).is_file():
        return (f"model.{key} '{value}' is neither a file beside the manifest nor an importable "
                "'package.module:function'", "paths are relative to the manifest's folder")
    return None


def _package_weights_problem(manifest, value: str) -> tuple[str, str] | None:
    try:
        path = resolve_file(value, manifest.root)
    except FileNotFoundError as exc:
        return f"model.weights '{value}': {exc}", "install the package that ships the weights"
    if path.is_file():
        return None
    return (f"model.weights '{value}' does not exist (looked for {path})",
            "check the path inside the package, or install the version that ships the weights")
