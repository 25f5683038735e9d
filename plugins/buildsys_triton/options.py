"""Options of the ``triton`` stage: what a target may set under ``options: {triton: ...}``.

Validated at plan time, so a model name Triton would refuse is one error with the manifest
line before anything builds.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: What a model name may be: it is the repository's folder name (Triton lists every
#: subfolder of the repository as a model, and its name must equal the folder's) and a
#: segment of every request path (``/v2/models/<name>/infer``), so no separators, no
#: spaces, no leading dot (a hidden folder), nothing that needs quoting in a URL.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


def check_model_name(value: str) -> str:
    """``value`` if Triton can serve a model of that name from a folder of that name, else ValueError."""
    if not MODEL_NAME.match(value) or ".." in value:
        raise ValueError(f"'{value}' is not a name Triton can serve: it names the model's folder in the "
                         "repository and a segment of its URL; use letters, digits, '_', '.', '+', '-' "
                         "(at most 128), starting with a letter, digit or '_', no '..'")
    return value


class RepositoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str | None = Field(
        default=None, description="the model's name in the repository (default: the manifest's name)")
    backend: Literal["auto", "python", "onnxruntime_onnx", "tensorrt_plan"] = Field(
        default="auto", description="auto: Triton's native platform for the input's kind where it has one "
                                    "(onnxruntime_onnx for onnx/onnx.ort, tensorrt_plan for tensorrt.plan), else "
                                    "the python backend calling buildsys.load; made concrete at plan time")
    instance_count: int = Field(default=1, ge=1, le=64, description="model instances per device")
    dynamic_batching: bool = Field(
        default=True, description="let Triton batch requests together (only where the model has a batch dim)")
    max_queue_delay_microseconds: int = Field(
        default=0, ge=0, description="how long the dynamic batcher may hold a request to grow a batch")
    accelerator: Literal["none", "tensorrt"] = Field(
        default="none", description="onnxruntime_onnx on a GPU only: 'tensorrt' asks ONNX Runtime's TensorRT "
                                    "execution provider first (precision_mode FP16 for fp16 targets, else FP32); "
                                    "none: the CUDA provider, Triton's default")

    @field_validator("model_name")
    @classmethod
    def _servable(cls, value: str | None) -> str | None:
        return None if value is None else check_model_name(value)


def resolve(options: RepositoryOptions, context) -> RepositoryOptions:
    """``StageSpec.resolve``: ``backend: auto`` made concrete for the input's kind, so the plan's
    options and the lock say when the python backend serves a kind Triton has no backend for."""
    from .config import NATIVE

    kind = context.input_kind
    if kind is None:
        return options
    native = NATIVE.get(kind, (None,))[0]
    if options.backend == "auto":
        return options.model_copy(update={"backend": native or "python"})
    if options.backend not in ("python", native):
        raise ValueError(f"backend {options.backend} does not serve {kind} artifacts; "
                         f"use {native or 'python'} or auto")
    return options
