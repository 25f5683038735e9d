"""How close an artifact's outputs must be to the source model's: the one ``Tolerance`` record,
used by the manifest's ``validation:`` block and the builtin validate stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Tolerance(BaseModel):
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


#: Per precision, when the manifest's ``validation:`` block says nothing: float noise and half
#: precision rounding pass on real models (atol scaled to each output's magnitude), damage does not.
DEFAULT_VALIDATION = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-5, atol_scale="output"),
    "fp16": Tolerance(rtol=1e-2, atol=1e-2, atol_scale="output"),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2, atol_scale="output"),
    "int8": Tolerance(min_cosine=0.99),
}
