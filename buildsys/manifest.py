"""The manifest: schema (pydantic v2), loader, and errors that point at file:line:column.

A manifest is data. Loading it runs no model code: the entrypoint is only checked to exist.
Every problem found becomes one ``ManifestError`` with its position and, where a name was
misspelt, a "did you mean"; they are raised together as ``ManifestErrors``.

Limits: a manifest is a page of settings, so input far past that is refused (exit 2, with
``file:line:column``) before it can cost time or memory or break the build later:

- the file: at most 1 MiB, UTF-8, no control characters;
- the YAML: at most 64 levels of nesting, 100 aliases and 100,000 keys and values counting
  what aliases repeat (an alias bomb is refused in milliseconds); no merge keys (``<<``), no
  tags on keys, no aliases inside the value they name (``buildsys.yamlpos``);
- at most 1,000 targets; ``name`` at most 64 characters, ``version`` 40, target names 64, a
  hardware tag 48, so artifact file names stay far below 255 bytes;
- ``model.entrypoint``, ``model.weights``, ``model.samples`` and ``calibration.data``:
  non-empty, no control characters, at most 1,024 bytes and 255 between slashes.

The numbers, and why each is where it is, are in ``buildsys.manifest_checks``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import hardware, yamlpos
from .errors import ManifestError, ManifestErrors
from .tolerance import DEFAULT_VALIDATION, Tolerance  # noqa: F401 (re-exported)
from .fsutil import SAFE_NAME, check_safe_name  # noqa: F401 (re-exported)
from .manifest_checks import (FILE_SUFFIXES, MAX_HARDWARE_TAG, MAX_NAME, MAX_TARGET_NAME,  # noqa: F401 (re-exported)
                              MAX_TARGETS, MAX_VERSION, check_length, check_path_text, read_text, resolve_file,
                              semantic_checks, to_error)

SCHEMA_VERSION = 1
DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8",
          "uint8", "bool")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


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


_FLAGS = ("allow_download", "trust_remote_code")


class GenerationSpec(_Strict):
    """``model.generation``: how a generation model (``task: text-generation``) is exported and
    validated. The source that serves the task reads it; others ignore it."""

    max_context: int | None = Field(default=None, ge=2, description=(
        "tokens one sequence may hold, prompt and generated together (default: the model's position "
        "limit, at most 512); above the model's positions is refused"))
    new_tokens: int = Field(default=16, ge=1, le=4096, description=(
        "tokens validation generates greedily through the artifact and compares with the eager "
        "model's generate()"))
    min_token_agreement: dict[Literal[PRECISIONS], float] = Field(  # type: ignore[valid-type]
        default={}, description=("per precision, the share of generated tokens (0..1) that must equal "
                                 "eager generate()'s; default 1.0 for fp32 (token for token), 0.5 otherwise"))

    @field_validator("min_token_agreement")
    @classmethod
    def _fractions(cls, value: dict) -> dict:
        for precision, share in value.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{precision}: {share} is not a share of tokens between 0 and 1")
        return value


class ModelSpec(_Strict):
    """The ``model:`` block. ``framework`` names the source plugin that loads the model; it reads
    ``entrypoint`` (user code or a file: torch, jax, onnx, text ...) or ``id`` (a model the
    source resolves by name, e.g. a Hugging Face model id or folder) — one of the two is needed."""

    framework: str
    entrypoint: str | None = Field(default=None, description=(
        "'path/to/file.py:function' or 'package.module:function' returning the model, or a model "
        "file (.onnx, .pt2, .txt ...), relative to the manifest"))
    id: str | None = Field(default=None, description=(
        "a model the source resolves by name: a Hugging Face model id in the local cache, a "
        "folder relative to the manifest, or 'package:DIST_MODULE/path' inside an installed package"))
    task: str | None = Field(default=None, description="what the model is used for (e.g. feature-extraction, "
                                                       "text-classification), or 'auto'; the source says which")
    revision: str | None = Field(default=None, description="the revision (branch, tag or commit) of an 'id' model")
    allow_download: bool = Field(default=False, description="let the source download an 'id' model it does not "
                                                            "find locally (never in tests)")
    trust_remote_code: bool = Field(default=False, description="let the source run code shipped in the model's "
                                                               "folder (refused unless set)")
    attention: Literal["auto", "eager", "sdpa"] | None = Field(default=None, description=(
        "the attention a source that offers several loads the model with (Hugging Face): eager, "
        "sdpa (fused), or auto (the default): eager when an ONNX exporter consumes the program, "
        "sdpa when only torch targets (torch.exported, aoti) do"))
    weights: str | None = Field(default=None, description=(
        "a file relative to the manifest, or 'package:DIST_MODULE/path/in/package' for weights "
        "shipped inside an installed Python package"))
    inputs: list[InputSpec] = []
    dims: dict[str, Dim] = {}
    samples: str | None = None
    generation: GenerationSpec | None = Field(default=None, description=(
        "for task text-generation: max_context, new_tokens validation generates, min_token_agreement"))
    imports: list[str] = Field(default=[], description=(
        "Python modules imported before the model or its artifacts are loaded, in every worker "
        "(they register the model's custom operators): 'package.module' or 'path/to/file.py'"))

    @field_validator("entrypoint", "id", "weights", "samples")
    @classmethod
    def _path_text(cls, value: str | None) -> str | None:
        return check_path_text(value) if value is not None else None

    @field_validator("imports")
    @classmethod
    def _import_texts(cls, value: list[str]) -> list[str]:
        return [check_path_text(v) for v in value]

    def weights_path(self, root: Path) -> Path | None:
        return resolve_file(self.weights, root) if self.weights else None

    def for_program(self, inputs: list[dict], dims: dict) -> ModelSpec:
        """This block with a companion program's inputs and dims (a seq2seq model's encoder): what
        that program's export, samples and engine profiles read."""
        block = self.model_dump(mode="json", exclude_none=True)
        return type(self).model_validate(dict(block, inputs=inputs, dims=dims, samples=None))


class Calibration(_Strict):
    data: str
    method: Literal["max", "entropy", "percentile"] = "entropy"
    percentile: float | None = Field(default=None, gt=0, le=100)
    samples: int = Field(default=256, ge=1)
    per_channel: bool = True
    op_types: list[str] | None = None
    exclude: list[str] | Literal["auto"] = Field(default=[], description=(
        "nodes kept in float: op types (op:Softmax), node-name or module-path globs; or auto: the layers "
        "adding the most error, chosen until the target's validation tolerance holds"))
    auto_rounds: int = Field(default=4, ge=1, le=12, description="exclude: auto's bound: rounds 1, 2, 3 ... keep "
                             "1, 2, 4 ... more of the worst layers")

    @field_validator("data")
    @classmethod
    def _path_text(cls, value: str) -> str:
        return check_path_text(value)


class Target(_Strict):
    format: str
    precision: Literal[PRECISIONS] = "fp32"  # type: ignore[valid-type]
    hardware: str | list[str] | None = None
    pipeline: list[str] | None = None
    from_: str | None = Field(default=None, alias="from")
    options: dict[str, dict[str, Any]] = {}
    runtimes: dict[str, str] = Field(
        default={}, description="where the artifact must load: runtime distribution -> version specifier, "
                                "e.g. {onnxruntime: '>=1.16'}; stages cap what they write (an ONNX "
                                "export its opset and IR version) so every release in the range loads it")
    description: str | None = None

    @field_validator("runtimes")
    @classmethod
    def _specifiers(cls, value: dict[str, str]) -> dict[str, str]:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        for name, spec in value.items():
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise ValueError(f"runtimes.{name}: '{spec}' is not a version specifier "
                                 "(e.g. '>=1.16', '==1.18.*', '>=10.0,<11')") from None
        return value

    @field_validator("hardware")
    @classmethod
    def _known_hardware(cls, value):
        if value is not None:
            try:
                tag = hardware.parse(value)
            except hardware.HardwareError as exc:
                raise ValueError(str(exc)) from None
            check_length(tag.filename_part, "the hardware tag", MAX_HARDWARE_TAG,
                         "it is part of artifact file names; name fewer devices")
        return value




def _target_name(name: str) -> str:
    check_length(name, "target name", MAX_TARGET_NAME, "it names a folder and registry entries")
    return check_safe_name(name, "target name")


TargetName = Annotated[str, AfterValidator(_target_name)]


class Manifest(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    name: str
    version: str
    description: str | None = None
    model: ModelSpec
    calibration: Calibration | None = None
    targets: dict[TargetName, Target] = Field(min_length=1)
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
        limit = MAX_NAME if info.field_name == "name" else MAX_VERSION
        check_length(value, info.field_name, limit, "it is part of every artifact's file name")
        return check_safe_name(value, info.field_name)

    @field_validator("targets", mode="before")
    @classmethod
    def _few_targets(cls, value):
        # Counted before each target is validated: planning time grows with their number.
        if isinstance(value, dict) and len(value) > MAX_TARGETS:
            raise ValueError(f"has {len(value)} entries; a manifest may have at most {MAX_TARGETS} targets "
                             "(split it into several manifests)")
        return value

    @property
    def path(self) -> Path:
        assert self._path is not None, "manifest was not loaded from a file"
        return self._path

    @property
    def root(self) -> Path:
        return self.path.resolve().parent

    def tolerance(self, precision: str) -> Tolerance:
        """The ``validation:`` block of ``precision``; its default when the block is absent, or
        gives only per-output rules (the other outputs keep the default)."""
        block = self.validation.get(precision)
        if block is None:
            return DEFAULT_VALIDATION[precision]
        if block.outputs and not block.has_metrics():
            return DEFAULT_VALIDATION[precision].model_copy(update={"outputs": block.outputs})
        return block

    def with_signature(self, inputs: list[dict], origin: str) -> Manifest:
        """This manifest with ``model.inputs`` read from the model file ``origin`` (a source's
        ``signature``), unless the manifest gives its own; every symbolic dim needs a range."""
        if self.model.inputs:
            return self
        try:
            model = self.model.model_copy(update={"inputs": [InputSpec.model_validate(i) for i in inputs]})
        except ValidationError as exc:
            raise ManifestError(f"{origin} declares inputs buildsys cannot read: {exc.errors()[0]['msg']}",
                                where=self.where("model", "entrypoint")) from None
        filled = self.model_copy(update={"model": model})
        problems = [_undeclared_dim(filled, spec, axis, dim, origin) for spec in model.inputs
                    for axis, dim in enumerate(spec.shape) if isinstance(dim, str) and dim not in model.dims]
        if problems:
            raise ManifestErrors(problems)
        return filled

    def where(self, *key_path: str | int) -> str:
        """``file:line:col`` of the value at ``key_path``, or of its nearest parent."""
        path = tuple(key_path)
        while path and path not in self._positions:
            path = path[:-1]
        line, col = self._positions.get(path, (1, 1))
        return f"{self.path}:{line}:{col}"

    def model_block(self) -> dict:
        """The ``model:`` block as canonical JSON-able data (part of the source fingerprint).
        Flags left at their default (False) and an empty ``imports`` are left out, so adding
        them to the schema does not change the fingerprint of every existing manifest."""
        block = self.model.model_dump(mode="json", exclude_none=True)
        return {k: v for k, v in block.items() if not (k in _FLAGS and v is False) and not (k == "imports" and not v)}


def _undeclared_dim(manifest: Manifest, spec: InputSpec, axis: int, dim: str, origin: str) -> ManifestError:
    where = manifest.where("model", "dims") if manifest.model.dims else manifest.where("model", "entrypoint")
    return ManifestError(f"{origin}: input '{spec.name}' axis {axis} is the dynamic dim '{dim}', and model.dims "
                         "gives it no range", where=where,
                         hint=f"add under model.dims:  {_yaml_key(dim)}: {{min: 1, opt: 8, max: 64}}")


def _yaml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else repr(name)


def json_schema() -> dict:
    schema = Manifest.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "buildsys manifest"
    return schema


# --------------------------------------------------------------------------------------------


def load(path: str | Path) -> Manifest:
    """Read and validate a manifest; raise ``ManifestErrors`` listing every problem."""
    path = Path(path)
    data, positions = yamlpos.load(read_text(path), str(path))
    if not isinstance(data, dict):
        raise ManifestErrors([ManifestError("the manifest must be a mapping of keys", where=f"{path}:1:1")])
    _check_schema_version(data, positions, path)
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestErrors([to_error(e, positions, path, Manifest) for e in exc.errors()]) from None
    manifest._path = path
    manifest._positions = positions
    problems = semantic_checks(manifest)
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


load_manifest = load  # the public name (buildsys.load_manifest)
