"""Options of the ``triton`` stage: what a target may set under ``options: {triton: ...}``.

Validated at plan time, so a model name Triton would refuse is one error with the manifest
line before anything builds.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: What a model name may be. It is the model's folder in the repository (Triton takes every
#: subfolder as a model and its config's name must equal the folder's: ``/`` or ``\\`` would nest
#: it, ``.``/``..`` are no folder) and a segment of every request path (``/v2/models/<name>/infer``:
#: spaces and URL-reserved characters would need quoting by every client). Measured with the
#: tritonserver 2.51 here: a non-ASCII name fails to load in the python backend (its stub encodes
#: paths as ASCII); a leading dot loads, but names a hidden folder that listings, globs and
#: buildsys's own artifact names skip, so it is refused too.
MODEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


def check_model_name(value: str) -> str:
    """``value`` if it can name a model in a Triton repository, else ValueError saying why not."""
    if not MODEL_NAME.match(value) or ".." in value:
        raise ValueError(f"'{value}' cannot name a Triton model: it is the model's folder in the repository "
                         "and a segment of its URL; use ASCII letters, digits, '_', '.', '+', '-' (at most 128), "
                         "starting with a letter, digit or '_', no '..'")
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
