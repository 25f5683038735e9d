"""The manifest: schema (pydantic v2), loader, and errors that point at file:line:column.

A manifest is data. Loading it runs no model code: the entrypoint is only checked to exist.
Every problem found becomes one ``ManifestError`` with its position and, where a name was
misspelt, a "did you mean"; they are raised together as ``ManifestErrors``.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import hardware, yamlpos
from .errors import ManifestError, ManifestErrors
from .fsutil import SAFE_NAME, check_safe_name  # noqa: F401 (re-exported)

SCHEMA_VERSION = 1
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8",
          "uint8", "bool")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# An entrypoint with one of these suffixes (or a '/') names a file, checked to exist at load;
# anything else is an importable 'package.module:function', resolved only when a stage runs.
FILE_SUFFIXES = (".py", ".txt", ".json", ".yaml", ".safetensors", ".pt", ".pth", ".bin", ".npz",
                 ".npy", ".msgpack", ".onnx")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(_Strict):
    name: str
    dtype: Literal[DTYPES]  # type: ignore[valid-type]
    shape: list[int | str]
    range: tuple[float, float] | None = Field(
        default=None, description="[low, high) of synthesised example values, e.g. token ids [0, 30522]")

    @model_validator(mode="after")
    def _ordered_range(self) -> InputSpec:
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high) with low < high, got {list(self.range)}")
        return self


class Dim(_Strict):
    """A dynamic dimension: a range (min/opt/max) or a list of buckets (``1``, ``"1-128"``)."""

    min: int | None = Field(default=None, ge=0)
    opt: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    buckets: list[int | str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Dim:
        if self.buckets is not None:
            if any(v is not None for v in (self.min, self.opt, self.max)):
                raise ValueError("give either min/opt/max or buckets, not both")
            ranges = [parse_bucket(b) for b in self.buckets]
            if not ranges or any(b[0] > a[0] for a, b in zip(ranges[1:], ranges)):
                raise ValueError("buckets must be a non-empty ascending list")
            return self
        if self.min is None or self.max is None:
            raise ValueError("a dim needs min and max (and optionally opt), or buckets")
        opt = self.opt if self.opt is not None else self.min
        if not self.min <= opt <= self.max:
            raise ValueError(f"need min <= opt <= max, got min={self.min} opt={opt} max={self.max}")
        return self

    def ranges(self) -> list[tuple[int, int, int]]:
        """(min, opt, max) per profile: one for a range, one per bucket."""
        if self.buckets is None:
            return [(self.min, self.opt if self.opt is not None else self.min, self.max)]
        return [parse_bucket(b) for b in self.buckets]


def parse_bucket(value: int | str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(value))
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ValueError(f"bucket '{value}' must be an integer or 'LOW-HIGH' with LOW <= HIGH")
    low, high = int(m.group(1)), int(m.group(2))
    return (low, high, high)


class ModelSpec(_Strict):
    framework: str
    entrypoint: str
    weights: str | None = Field(default=None, description=(
        "a file relative to the manifest, or 'package:DIST_MODULE/path/in/package' for weights "
        "shipped inside an installed Python package"))
    inputs: list[InputSpec] = []
    dims: dict[str, Dim] = {}
    samples: str | None = None

    def weights_path(self, root: Path) -> Path | None:
        return resolve_file(self.weights, root) if self.weights else None


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


class Calibration(_Strict):
    data: str
    method: Literal["max", "entropy", "percentile"] = "entropy"
    percentile: float | None = Field(default=None, gt=0, le=100)
    samples: int = Field(default=256, ge=1)
    per_channel: bool = True
    op_types: list[str] | None = None
    exclude: list[str] = []


class Target(_Strict):
    format: str
    precision: Literal[PRECISIONS] = "fp32"  # type: ignore[valid-type]
    hardware: str | list[str] | None = None
    pipeline: list[str] | None = None
    from_: str | None = Field(default=None, alias="from")
    options: dict[str, dict[str, Any]] = {}
    description: str | None = None

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value):
        if value is not None:
            try:
                hardware.parse(value)
            except hardware.HardwareError as exc:
                raise ValueError(str(exc)) from None
        return value


class Tolerance(_Strict):
    rtol: float | None = Field(default=None, ge=0)
    atol: float | None = Field(default=None, ge=0)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)


DEFAULT_VALIDATION = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-5),
    "fp16": Tolerance(rtol=1e-2, atol=1e-2),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2),
    "int8": Tolerance(min_cosine=0.99),
}


class Manifest(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    name: str
    version: str
    description: str | None = None
    model: ModelSpec
    calibration: Calibration | None = None
    targets: dict[str, Target] = Field(min_length=1)
    validation: dict[Literal[PRECISIONS], Tolerance] = {}  # type: ignore[valid-type]

    _path: Path | None = None
    _positions: dict = {}

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value):
        # YAML reads 'version: 2' or 'version: 1.2' as numbers; a version is text.
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @field_validator("name", "version")
    @classmethod
    def _safe(cls, value: str, info) -> str:
        return check_safe_name(value, info.field_name)

    @field_validator("targets")
    @classmethod
    def _safe_targets(cls, value: dict) -> dict:
        for name in value:
            check_safe_name(name, "target name")
        return value

    @property
    def path(self) -> Path:
        assert self._path is not None, "manifest was not loaded from a file"
        return self._path

    @property
    def root(self) -> Path:
        return self.path.resolve().parent

    def tolerance(self, precision: str) -> Tolerance:
        return self.validation.get(precision) or DEFAULT_VALIDATION[precision]

    def where(self, *key_path: str | int) -> str:
        """``file:line:col`` of the value at ``key_path``, or of its nearest parent."""
        path = tuple(key_path)
        while path and path not in self._positions:
            path = path[:-1]
        line, col = self._positions.get(path, (1, 1))
        return f"{self.path}:{line}:{col}"

    def model_block(self) -> dict:
        """The ``model:`` block as canonical JSON-able data (part of the source fingerprint)."""
        return self.model.model_dump(mode="json", exclude_none=True)


def json_schema() -> dict:
    schema = Manifest.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "buildsys manifest"
    return schema


# --------------------------------------------------------------------------------------------


def load(path: str | Path) -> Manifest:
    """Read and validate a manifest; raise ``ManifestErrors`` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}", hint="pass the path of a YAML manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from None
    data, positions = yamlpos.load(text, str(path))
    if not isinstance(data, dict):
        raise ManifestErrors([ManifestError("the manifest must be a mapping of keys", where=f"{path}:1:1")])
    _check_schema_version(data, positions, path)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestErrors([_to_error(e, positions, path) for e in exc.errors()]) from None
    manifest._path = path
    manifest._positions = positions
    problems = _semantic_checks(manifest)
    if problems:
        raise ManifestErrors(problems)
    return manifest


def _check_schema_version(data: dict, positions: dict, path: Path) -> None:
    version = data.get("schema")
    if version is not None and version != SCHEMA_VERSION:
        line, col = positions.get(("schema",), (1, 1))
        raise ManifestErrors([ManifestError(
            f"unsupported schema {version!r}; this buildsys reads schema {SCHEMA_VERSION}",
            where=f"{path}:{line}:{col}", hint="upgrade buildsys, or write 'schema: 1'")])


def _to_error(error: dict, positions: dict, path: Path) -> ManifestError:
    loc = _data_loc(error["loc"], positions)
    key_pos = positions.get(loc + ("<key>",)) if error["type"] == "extra_forbidden" else None
    line, col = key_pos or _nearest(positions, loc)
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    hint = None
    if error["type"] == "extra_forbidden":
        known = _fields_at(loc[:-1])
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


def _fields_at(loc: tuple) -> list[str]:
    """Field names (by alias) of the schema object found at ``loc``; [] if it is not a model."""
    current: Any = Manifest
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


def _semantic_checks(manifest: Manifest) -> list[ManifestError]:
    problems = []
    problems += _check_dims(manifest)
    problems += _check_entrypoint(manifest)
    for name, target in manifest.targets.items():
        if target.from_ is not None and target.from_ not in manifest.targets:
            close = difflib.get_close_matches(target.from_, list(manifest.targets), n=1)
            problems.append(ManifestError(
                f"target '{name}' builds from unknown target '{target.from_}'",
                where=manifest.where("targets", name, "from"),
                hint=f"did you mean '{close[0]}'?" if close else f"targets: {', '.join(manifest.targets)}"))
    return problems


def _check_dims(manifest: Manifest) -> list[ManifestError]:
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


def _check_entrypoint(manifest: Manifest) -> list[ManifestError]:
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


load_manifest = load  # the public name (buildsys.load_manifest)
