"""opset: auto means the highest opset whose export works: a failure there falls back to the
exporter's native opset and says why; an explicit opset never silently changes."""

from __future__ import annotations

import pytest

from buildsys import StageFailed
from buildsys_onnx import export, opsets


class Ctx:
    def __init__(self):
        self.logs = []

    def progress(self, *args):
        pass

    def log(self, message):
        self.logs.append(message)


def choice(opset, limited_by=("exporter",)):
    return opsets.Choice(opset, limited_by, ())


def attempts(failing: set[int]):
    tried = []

    def attempt(opset):
        tried.append(opset)
        if opset in failing:
            raise StageFailed(f"torch.onnx.export failed: attention at opset {opset} needs\nequal heads")
        return f"model@{opset}", opset

    return attempt, tried


def test_auto_falls_back_to_the_native_opset_and_records_the_failure():
    ctx = Ctx()
    attempt, tried = attempts({25})
    model, opset, emitted, failed = export.export_working(ctx, None, {}, choice(25), {}, attempt)
    assert (model, opset, emitted, tried) == ("model@18", 18, 18, [25, 18])
    assert failed == [{"opset": 25, "error": "torch.onnx.export failed: attention at opset 25 needs equal heads"}]
    assert any("opset 25 failed" in line for line in ctx.logs)


def test_auto_that_works_tries_nothing_else():
    attempt, tried = attempts(set())
    assert export.export_working(Ctx(), None, {}, choice(25), {}, attempt)[1:] == (25, 25, [])
    assert tried == [25]


@pytest.mark.parametrize("limited_by", [("request",), ("range",)])
def test_an_explicit_opset_or_range_top_fails_as_asked(limited_by):
    attempt, tried = attempts({25})
    with pytest.raises(StageFailed, match="attention at opset 25"):
        export.export_working(Ctx(), None, {}, choice(25, limited_by), {}, attempt)
    assert tried == [25]


def test_when_every_opset_fails_the_first_error_is_raised_naming_the_other():
    attempt, tried = attempts({25, 18})
    with pytest.raises(StageFailed) as info:
        export.export_working(Ctx(), None, {}, choice(25), {}, attempt)
    assert tried == [25, 18]
    assert "attention at opset 25" in info.value.message and "opset 18 was tried too" in info.value.message


def test_no_fallback_at_or_below_the_native_opset():
    assert export.fallback_opsets(choice(18)) == [18]
    assert export.fallback_opsets(choice(17)) == [17]
    assert export.fallback_opsets(choice(21)) == [21, 18]
