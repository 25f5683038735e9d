"""The torch.export stage, and the diagnostics shared with ``buildsys doctor``.

When export fails, the user gets the cause with its line in their model code and the list of
graph breaks (from ``torch._dynamo.explain``) and draft-export issues, not a raw traceback.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from buildsys import StageFailed

from . import inputs as model_inputs
from .attention import restore as restore_attention
from .flat import call, flat_module, output_names
from .programs import export_companions
from .source import call_eager
from buildsys import user_frame

PT2 = "model.pt2"


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strict: bool = Field(default=False, description="use the strict (TorchDynamo) tracer")
    check_rtol: float = Field(default=1e-4, ge=0, description="save/load round-trip tolerance")
    check_atol: float = Field(default=1e-5, ge=0)


def export_program(model, root: Path, module, strict: bool = False, *, in_doctor: bool = False):
    """(ExportedProgram, output names) for ``module`` with the manifest's dynamic dims."""
    import torch

    args = model_inputs.example_inputs(model)
    with torch.no_grad():
        input_names = [s.name for s in model.inputs]
        names = output_names(call_eager(module, args, model, root))
        flat = flat_module(module, input_names)
        try:
            with export_context(module):
                program = torch.export.export(flat, args, dynamic_shapes=model_inputs.dynamic_shapes(model),
                                              strict=strict)
        except Exception as exc:
            raise StageFailed(describe_failure(exc, flat, args, model, root, in_doctor=in_doctor)) from None
    restore_attention(program)  # a source's opaque attention back to ATen's (attention.py)
    return program, names


def export_context(module):
    """The context the model's source asks its export to run in (``module.buildsys_export_context()``,
    a context manager), else none. The Hugging Face generation source turns on torch's
    size-oblivious shape reasoning there: traced at seq 16 and past 16, its one step graph must
    also take seq 1 (decode) and past 0 (prefill)."""
    factory = getattr(module, "buildsys_export_context", None)
    return factory() if callable(factory) else contextlib.nullcontext()


def describe_failure(exc: BaseException, flat, args, model, root: Path, *, in_doctor: bool = False) -> str:
    """One readable report: cause, user source line, graph breaks, draft-export issues."""
    lines = [f"torch.export failed: {type(exc).__name__}: {in_dim_names(_cause(str(exc)), model)}"]
    where = user_frame(exc, root) or _user_line_in_message(str(exc), root)
    if where:
        lines.append(f"  at {where}")
    lines += [f"  {line}" for line in graph_breaks(flat, args, root)]
    lines += [f"  {line}" for line in draft_issues(flat, args, model, root)]
    lines.append("  ways out: rewrite data-dependent Python control flow with torch.cond or tensor ops; "
                 "check the dims in the manifest against what the model accepts"
                 + ("" if in_doctor else "; 'buildsys doctor MANIFEST' diagnoses without building"))
    return "\n".join(lines)


def graph_breaks(flat, args, root: Path) -> list[str]:
    """Graph breaks torch._dynamo finds, each with the user line that causes it."""
    try:
        import torch._dynamo

        torch._dynamo.reset()
        with quiet():
            explained = torch._dynamo.explain(flat)(*args)
    except Exception as exc:  # diagnostics must never hide the original error
        return [f"(graph-break analysis failed: {type(exc).__name__})"]
    found = []
    for reason in explained.break_reasons:
        frames = [f for f in (reason.user_stack or []) if str(Path(f.filename).resolve()).startswith(str(Path(root).resolve()))]
        place = f" at {frames[-1].filename}:{frames[-1].lineno} ({(frames[-1].line or '').strip()})" if frames else ""
        found.append(f"graph break: {_first_lines(str(reason.reason), 1)}{place}")
    return [f"{explained.graph_break_count} graph break(s):"] + found if found else ["no graph breaks"]


def draft_issues(flat, args, model, root: Path | None = None) -> list[str]:
    """draft_export's findings, one line each in the manifest's terms: the guard with symbols
    named by their manifest dims (``batch``, ``height``), and the model line that added it."""
    try:
        import torch

        with quiet():
            program = torch.export.draft_export(flat, args, dynamic_shapes=model_inputs.dynamic_shapes(model))
        report = getattr(program, "_report", None)
        failures = list(getattr(report, "failures", []) or [])
        files = _interned_filenames(report)
    except Exception as exc:
        return [f"(draft_export could not run: {type(exc).__name__}: {_first_lines(str(exc), 1)})"]
    counts: dict[str, int] = {}
    for failure in failures:
        line = summarise_failure(failure, model, files, root)
        counts[line] = counts.get(line, 0) + 1
    return [line + (f" (x{n})" if n > 1 else "") for line, n in list(counts.items())[:10]]


def _interned_filenames(report) -> dict[int, str]:
    """Frame file numbers -> names: the report's table holds only names first seen in this run,
    so torch's process-wide intern table fills in the rest (private; best effort)."""
    files = dict(getattr(report, "str_to_filename", {}) or {})
    try:
        from torch._logging.structured import INTERN_TABLE

        files.update({number: name for name, number in INTERN_TABLE.items() if number not in files})
    except (ImportError, AttributeError):
        pass
    return files


_SOURCE = re.compile(r"\['args'\]\[(\d+)\]\.size\(\)\[(\d+)\]")


def summarise_failure(failure, model, files: dict, root: Path | None) -> str:
    """One draft_export failure as ``KIND: guard at file:line (code)``."""
    kind = str(getattr(failure, "failure_type", "issue"))
    data = getattr(failure, "data", None) or {}
    if not isinstance(data, dict):
        return f"draft_export: {kind}: {_first_lines(str(data), 1)[:200]}"
    what = data.get("expr") or data.get("op") or data.get("reason") or ""
    what = _in_manifest_terms(str(what), _symbol_sources(data), model)
    return f"draft_export: {kind}: {what}{_user_place(data.get('user_stack') or [], files, root)}"


def _symbol_sources(data: dict) -> dict[str, str]:
    sources = {k: (v[0] if isinstance(v, list) and v else v) for k, v in (data.get("symbol_to_sources") or {}).items()}
    sources.update((data.get("frame_locals") or {}).get("symbols") or {})
    return {str(k): str(v) for k, v in sources.items()}


def in_dim_names(text: str, model) -> str:
    """``L['args'][0].size()[1]`` -> ``seq``: the exporter's source expressions in the manifest's dim names."""
    return re.sub("L" + _SOURCE.pattern, lambda found: _dim_name(found, model) or found.group(0), text)


def _dim_name(found: re.Match, model) -> str | None:
    """The manifest's name for input i's axis j (``_SOURCE``'s two groups), else None."""
    index, axis = int(found.group(1)), int(found.group(2))
    if index < len(model.inputs) and axis < len(model.inputs[index].shape):
        dim = model.inputs[index].shape[axis]
        return str(dim) if isinstance(dim, str) else f"{model.inputs[index].name}.shape[{axis}]"
    return None


def _in_manifest_terms(expr: str, sources: dict[str, str], model) -> str:
    """``s33`` -> ``batch`` where the symbol is input i's dim j and the manifest names that dim."""
    found = {symbol: _SOURCE.search(source) for symbol, source in sources.items()}
    names = {symbol: name for symbol, match in found.items() if match and (name := _dim_name(match, model))}
    if not names:
        return expr
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(1)], expr)


def _user_place(stack: list, files: dict, root: Path | None) -> str:
    frames = [f for f in stack if isinstance(f, dict)]
    resolved = [(files.get(f.get("filename"), str(f.get("filename"))), f) for f in frames]
    if root is not None:
        inside = [(name, f) for name, f in resolved if str(name).startswith(str(Path(root).resolve()))]
        resolved = inside or resolved
    if not resolved:
        return ""
    name, frame = resolved[-1]
    return f" at {name}:{frame.get('line')} ({str(frame.get('loc', '')).strip()})"


@contextlib.contextmanager
def quiet():
    """torch's own logs, warnings and FX graph dumps kept out of a diagnosis (they are for torch's
    developers; what matters is summarised from the returned reports)."""
    previous = logging.root.manager.disable  # torch's loggers set their own levels: disable them all
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _cause(message: str) -> str:
    """The exporter's message without its advice for torch developers (TORCH_LOGS, suggested
    Python fixes for dynamic_shapes, which a manifest user does not write)."""
    message = message.split("Suggested fixes:")[0]
    message = re.sub(r"For more information, run with TORCH_LOGS=\S+\.?\s*", "", message)
    message = re.sub(r"If you're using (mark_dynamic|Dim\.DYNAMIC)[^.]*\.\s*", "", message)
    return _first_lines(message, 6)


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
    check_samples(ctx.model, module, torch.export.load(str(path)), options)
    programs = export_companions(ctx, module, options, export_program, check_samples)
    return {**({"programs": programs} if programs else {}), "primary": PT2, "input_names": [s.name for s in ctx.model.inputs], "output_names": names,
            "dynamic_dims": model_inputs.dynamic_dims(ctx.model),
            "range_constraints": {str(k): str(v) for k, v in program.range_constraints.items()},
            **loaded_as(module)}


def loaded_as(module) -> dict:
    """How the source loaded the module (``module.buildsys_loaded_as``: the Hugging Face source's
    attention implementation and shape rewrites), carried into the meta of what builds from it."""
    record = getattr(module, "buildsys_loaded_as", None)
    return {"loaded_as": dict(record)} if isinstance(record, dict) and record else {}


def check_samples(model, module, loaded, options: ExportOptions) -> None:
    """The program (saved and loaded back, in a build) must match eager on every default sample."""
    import torch

    from .flat import flatten

    input_names = [s.name for s in model.inputs]
    samples = model_inputs.default_samples(model)
    with torch.no_grad():
        for sample in samples:
            expected = flatten(call(module, input_names, sample))
            try:
                actual = loaded.module()(*sample)
            except Exception as exc:  # a runtime guard the export inserted: name the dims, not s1
                raise StageFailed(_rejected(exc, sample, samples, loaded, model)) from None
            for i, (a, e) in enumerate(zip(actual, expected)):
                if a.shape != e.shape or not torch.allclose(a.float(), e.float(), rtol=options.check_rtol, atol=options.check_atol):
                    raise StageFailed(f"the saved ExportedProgram disagrees with eager on output {i} "
                                      f"for input shapes {[list(t.shape) for t in sample]}")


def _rejected(exc: BaseException, sample, samples, loaded, model) -> str:
    """The saved program refuses a size the manifest's dims allow: which sizes it takes and
    refuses among the default samples (each dim at its min, opt and max), and its guard."""
    def sizes(values) -> str:
        return ", ".join(f"{d}={values[i].shape[axis]}" for d, (i, axis) in _dim_axes(model).items()) or "static"

    verdicts = []
    for other in samples:
        try:
            loaded.module()(*other)
            verdicts.append(f"takes {sizes(other)}")
        except Exception:
            verdicts.append(f"refuses {sizes(other)}")
    guard = _first_lines(str(exc), 1)
    return (f"the exported program refuses inputs the manifest's dims allow ({sizes(sample)}): "
            f"{type(exc).__name__}: {_symbols_to_dims(guard, loaded, model)[:300]}\n"
            f"    of the default samples it {'; '.join(verdicts)}\n"
            "    the model constrains those dims more than the manifest says: narrow the dims' ranges "
            "(min/max) to sizes it takes, or make the model accept them")


def _dim_axes(model) -> dict[str, tuple[int, int]]:
    """manifest dim -> (input index, axis) of its first use."""
    found: dict[str, tuple[int, int]] = {}
    for i, spec in enumerate(model.inputs):
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, str):
                found.setdefault(dim, (i, axis))
    return found


def _symbols_to_dims(text: str, loaded, model) -> str:
    """``s1`` in a guard -> the manifest dim whose input axis carries that symbol."""
    placeholders = [n for n in loaded.graph.nodes if n.op == "placeholder" and n.name not in loaded.graph_signature.inputs_to_parameters
                    and n.name not in loaded.graph_signature.inputs_to_buffers]
    names = {}
    for dim, (i, axis) in _dim_axes(model).items():
        if i < len(placeholders):
            value = placeholders[i].meta.get("val")
            if value is not None and axis < len(value.shape):
                names[str(value.shape[axis])] = dim
    symbols = {k: v for k, v in names.items() if re.fullmatch(r"[su]\d+", k)}
    if not symbols:
        return text
    return re.sub(r"\b(" + "|".join(map(re.escape, symbols)) + r")\b", lambda m: symbols[m.group(1)], text)
