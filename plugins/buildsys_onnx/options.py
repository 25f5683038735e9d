"""Options of the ONNX stages: what a target may set under ``options.onnx.export`` / ``onnx.ort``.

Validated at plan time (unknown keys are errors naming the key); ``onnx.export``'s "auto"
values are made concrete by ``opsets.resolve`` so that the action key records the choice.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

Opset = Annotated[StrictInt, Field(ge=1, le=99)]
Consumer = Literal["onnxruntime", "tensorrt"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpsetRange(_Options):
    """``opset: {min: 17, max: 21}``: the highest opset in the range that every consumer accepts."""

    min: Opset
    max: Opset

    @model_validator(mode="after")
    def _ordered(self) -> OpsetRange:
        if self.min > self.max:
            raise ValueError(f"opset range needs min <= max, got min={self.min} max={self.max}")
        return self


class ExportOptions(_Options):
    opset: Union[Literal["auto"], Opset, OpsetRange] = Field(
        default="auto",
        description="ONNX opset: auto (the highest the exporter and every consumer accept), "
                    "a number, or {min, max}")
    external_data: Union[Literal["auto"], StrictBool] = Field(
        default="auto",
        description="store initializers in model.onnx.data; auto: only when the model is over 2 GB")
    consumers: Union[Literal["auto"], list[Consumer]] = Field(
        default="auto",
        description="runtimes that must accept the graph and so cap the opset; auto: onnxruntime "
                    "(validation runs it), plus tensorrt when the manifest has a tensorrt.plan target")
    runtimes: Union[dict[str, str], None] = Field(
        default=None,
        description="filled in by the planner from the target's runtimes: (where the graph must "
                    "load); caps the opset and the IR version. Set runtimes on the target, not here")
    max_ir_version: Union[StrictInt, None] = Field(
        default=None,
        description="filled in by the planner: the highest ONNX IR version the target's runtimes "
                    "load; the graph is stamped no higher")
    opset_limited_by: Union[list[str], None] = Field(
        default=None,
        description="filled in by the planner: what capped the opset ('request' when it was given "
                    "explicitly); recorded in artifact.json, leave it unset")


class OptimizeOptions(_Options):
    level: Literal["basic", "extended", "all"] = Field(
        default="extended",
        description="ONNX Runtime graph optimization level; 'all' adds layout changes specific to "
                    "this host's CPU, so its output is tagged with the host")
