"""How close an artifact's outputs must be to the source model's: the one ``Tolerance`` record,
used by the manifest's ``validation:`` block and the builtin validate stage."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Tolerance(BaseModel):
    """Element-wise ``|a - b| <= atol + rtol * |b|`` and/or a minimum cosine similarity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rtol: float | None = Field(default=None, ge=0)
    atol: float | None = Field(default=None, ge=0)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)


#: Per precision, when the manifest's ``validation:`` block says nothing.
DEFAULT_VALIDATION = {
    "fp32": Tolerance(rtol=1e-4, atol=1e-5),
    "fp16": Tolerance(rtol=1e-2, atol=1e-2),
    "bf16": Tolerance(rtol=5e-2, atol=5e-2),
    "int8": Tolerance(min_cosine=0.99),
}
