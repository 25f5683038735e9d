"""How close an artifact's outputs must be to the source model's: the one ``Tolerance`` record
(a precision's ``Metrics``, and optionally each named output's), used by the manifest's
``validation:`` block and the builtin validate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Metrics(BaseModel):
    """Element-wise ``|a - b| <= atol + rtol * |b|`` and/or a minimum cosine similarity.

    ``atol_scale: output`` multiplies ``atol`` by the output's magnitude (its largest ``|b|``,
    at least 1): rounding error grows with the sums an output is made of, so a logit near 15
    carries ~15x the absolute noise of one near 1, and the element-wise rule would otherwise
    fail healthy fp32 and fp16 artifacts on their small elements. ``none``: ``atol`` as written.

    ``min_top1``: for classifier scores, the share of rows (over the last axis) whose highest
    score is the reference's; checked on outputs with a last axis longer than 1, others pass it.
    Give it alone (``validation: {fp16: {min_top1: 0.98}}``) to judge a classifier by its
    decisions rather than by every logit. Every report gives ``top1`` for such outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rtol: float | None = Field(default=None, ge=0)
    atol: float | None = Field(default=None, ge=0)
    atol_scale: Literal["none", "output"] = "none"
    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    min_top1: float | None = Field(default=None, ge=0, le=1)


class Tolerance(Metrics):
    """A precision's rule (``Metrics``), with ``outputs``: rules of their own for named outputs
    (``validation: {fp16: {outputs: {logits: {min_top1: 0.98}, hidden: {min_cosine: 0.99}}}}``).
    An output's block is its whole rule; an output not named there gets the precision's own
    metrics. A name that is not an output of the model is a manifest error (``unknown_outputs``)."""

    outputs: dict[str, Metrics] = {}

    def rule(self, output: str) -> Metrics:
        """The metrics ``output`` is judged by."""
        return self.outputs.get(output, self)

    def unknown_outputs(self, names: list[str]) -> list[str]:
        """The outputs named in ``outputs`` that are not among ``names`` (the model's)."""
        return [n for n in self.outputs if n not in names]

    def has_metrics(self) -> bool:
        """Whether the block sets any metric of its own (not only ``outputs``)."""
        return bool(self.model_fields_set - {"outputs"})


#: Per precision, when the manifest's ``validation:`` block says nothing: float noise and half
#: precision rounding pass on real models (atol scaled to each output's magnitude), damage does not.
DEFAULT_VALIDATION = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-5, atol_scale="output"),
    "fp16": Tolerance(rtol=1e-2, atol=1e-2, atol_scale="output"),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2, atol_scale="output"),
    "int8": Tolerance(min_cosine=0.99),
}
