"""The torch.export stage, and the diagnostics shared with ``buildsys doctor``.

When export fails, the user gets the cause with its line in their model code and the list of
graph breaks (from ``torch._dynamo.explain``) and draft-export issues, not a raw traceback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from buildsys import StageFailed

from . import inputs as model_inputs
from .flat import call, flat_module, output_names
from buildsys import user_frame

PT2 = "model.pt2"


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strict: bool = Field(default=False, description="use the strict (TorchDynamo) tracer")
    check_rtol: float = Field(default=1e-4, ge=0, description="save/load round-trip tolerance")
    check_atol: float = Field(default=1e-5, ge=0)


def export_program(model, root: Path, module, strict: bool = False):
    """(ExportedProgram, output names) for ``module`` with the manifest's dynamic dims."""
    import torch

    args = model_inputs.example_inputs(model)
    with torch.no_grad():
        input_names = [s.name for s in model.inputs]
        names = output_names(call(module, input_names, args))
        flat = flat_module(module, input_names)
        try:
            program = torch.export.export(flat, args, dynamic_shapes=model_inputs.dynamic_shapes(model),
                                          strict=strict)
        except Exception as exc:
            raise StageFailed(describe_failure(exc, flat, args, model, root)) from None
    return program, names


def describe_failure(exc: BaseException, flat, args, model, root: Path) -> str:
    """One readable report: cause, user source line, graph breaks, draft-export issues."""
    lines = [f"torch.export failed: {type(exc).__name__}: {_first_lines(str(exc), 6)}"]
    where = user_frame(exc, root) or _user_line_in_message(str(exc), root)
    if where:
        lines.append(f"  at {where}")
    lines += [f"  {line}" for line in graph_breaks(flat, args, root)]
    lines += [f"  {line}" for line in draft_issues(flat, args, model)]
    lines.append("  ways out: rewrite data-dependent Python control flow with torch.cond or tensor ops; "
                 "check the dims in the manifest against what the model accepts; run 'buildsys doctor'")
    return "\n".join(lines)


def graph_breaks(flat, args, root: Path) -> list[str]:
    """Graph breaks torch._dynamo finds, each with the user line that causes it."""
    try:
        import torch._dynamo

        torch._dynamo.reset()
        explained = torch._dynamo.explain(flat)(*args)
    except Exception as exc:  # diagnostics must never hide the original error
        return [f"(graph-break analysis failed: {type(exc).__name__})"]
    found = []
    for reason in explained.break_reasons:
        frames = [f for f in (reason.user_stack or []) if str(Path(f.filename).resolve()).startswith(str(Path(root).resolve()))]
        place = f" at {frames[-1].filename}:{frames[-1].lineno} ({(frames[-1].line or '').strip()})" if frames else ""
        found.append(f"graph break: {_first_lines(str(reason.reason), 1)}{place}")
    return [f"{explained.graph_break_count} graph break(s):"] + found if found else ["no graph breaks"]


def draft_issues(flat, args, model) -> list[str]:
    try:
        import torch

        program = torch.export.draft_export(flat, args, dynamic_shapes=model_inputs.dynamic_shapes(model))
        report = getattr(program, "_report", None)
        failures = list(getattr(report, "failures", []) or [])
    except Exception as exc:
        return [f"(draft_export could not run: {type(exc).__name__}: {_first_lines(str(exc), 1)})"]
    return [f"draft_export: {_first_lines(str(getattr(f, 'failure_type', f)), 1)}: "
            f"{_first_lines(str(getattr(f, 'data', '')), 2)}" for f in failures[:10]]


def _first_lines(text: str, count: int) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:count] if line.strip())


def _user_line_in_message(message: str, root: Path) -> str | None:
    root_text = str(Path(root).resolve())
    for line in message.splitlines():
        if root_text in line and "line" in line:
            return line.strip()
    return None


def run_export(ctx, inputs, options: ExportOptions):
    import torch

    module = ctx.load_model()
    program, names = export_program(ctx.model, ctx.root, module, options.strict)
    path = ctx.out_dir / PT2
    torch.export.save(program, str(path))
    _check_round_trip(ctx.model, module, torch.export.load(str(path)), options)
    return {"primary": PT2, "input_names": [s.name for s in ctx.model.inputs], "output_names": names,
            "dynamic_dims": model_inputs.dynamic_dims(ctx.model),
            "range_constraints": {str(k): str(v) for k, v in program.range_constraints.items()}}


def _check_round_trip(model, module, loaded, options: ExportOptions) -> None:
    """The saved program, loaded back, must match eager on every default sample."""
    import torch

    from .flat import flatten

    input_names = [s.name for s in model.inputs]
    with torch.no_grad():
        for sample in model_inputs.default_samples(model):
            expected = flatten(call(module, input_names, sample))
            actual = loaded.module()(*sample)
            for i, (a, e) in enumerate(zip(actual, expected)):
                if a.shape != e.shape or not torch.allclose(a.float(), e.float(), rtol=options.check_rtol, atol=options.check_atol):
                    raise StageFailed(f"the saved ExportedProgram disagrees with eager on output {i} "
                                      f"for input shapes {[list(t.shape) for t in sample]}")
