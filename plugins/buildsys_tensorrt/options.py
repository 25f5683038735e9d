"""Options of the ``tensorrt.plan`` stage: what a target may set under ``options: {tensorrt.plan: ...}``.

Validated at plan time (unknown keys and ill-formed profiles are errors there); ``resolve``
makes ``flavour: auto`` concrete and refuses hardware the flavour cannot serve, so the action
key and the lock record the choice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from . import flavours

Pool = Literal["workspace", "tactic_dram", "tactic_shared_memory"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shapes(_Options):
    """One input's shapes in one optimization profile: ``{min: [1, 3, 32, 32], opt: [...], max: [...]}``."""

    min: list[StrictInt]
    opt: list[StrictInt]
    max: list[StrictInt]

    @model_validator(mode="after")
    def _ordered(self) -> Shapes:
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ValueError(f"min, opt and max need one size per axis, got {self.min}, {self.opt}, {self.max}")
        for axis, (low, mid, high) in enumerate(zip(self.min, self.opt, self.max)):
            if not 0 <= low <= mid <= high:
                raise ValueError(f"axis {axis} needs 0 <= min <= opt <= max, got min={low} opt={mid} max={high}")
        return self


class PlanOptions(_Options):
    flavour: Literal["auto", "tensorrt", "tensorrt-rtx"] = Field(
        default="auto", description="auto: enterprise TensorRT when installed, else TensorRT-RTX")
    optimization_level: int = Field(
        default=3, ge=0, le=5, description="builder optimization level (0 builds fastest, 5 searches longest)")
    profiles: list[dict[str, Shapes]] | None = Field(
        default=None,
        description="optimization profiles, each {input: {min, opt, max}}; unset: one per combination of "
                    "the manifest's dim ranges/buckets")
    memory_pools: dict[Pool, float] = Field(
        default={}, description="memory pool limits in MiB, e.g. {workspace: 1024, tactic_shared_memory: 0.0625}")
    max_aux_streams: int | None = Field(default=None, ge=0, description="auxiliary streams the engine may use")
    tiling: Literal["none", "fast", "moderate", "full"] | None = Field(
        default=None, description="tiling optimization level, where the flavour has it")
    timing_cache: bool = Field(
        default=True, description="reuse and extend the timing cache kept per flavour, version and hardware")

    @model_validator(mode="after")
    def _positive_pools(self) -> PlanOptions:
        bad = {name: value for name, value in self.memory_pools.items() if value <= 0}
        if bad:
            raise ValueError(f"memory pool limits must be positive MiB, got {bad}")
        return self


def resolve(options: PlanOptions, context) -> PlanOptions:
    """``StageSpec.resolve``: the concrete flavour, checked against the target's hardware."""
    flavour = flavours.resolve_flavour(options.flavour)
    flavours.check_hardware(flavour, context.hardware)  # the planner adds target and stage to the message
    return options.model_copy(update={"flavour": flavour})
