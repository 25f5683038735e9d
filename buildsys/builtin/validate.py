"""Validation: every artifact that has a runner on this host is compared with the source model.

The source plugin registers a stage producing kind ``reference`` (sample inputs and the source
model's outputs, written with ``save_reference``); the planner adds one ``validate`` node per
target whose artifact kind has a runner and whose hardware this host has. The validate stage
(this builtin plugin) runs the artifact on the reference inputs and checks every output against
the manifest's tolerance for the target's precision, collecting every mismatch before failing.
numpy is imported inside the functions, in the worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ManifestError, StageFailed
from ..graph import REFERENCE_KIND, VALIDATE
from ..hardware import CPU_TARGET, check_cpu_target
from ..hookspecs import hookimpl
from ..specs import KindSpec, StageSpec
from ..tolerance import Metrics, Tolerance
from ..usercode import import_modules

REFERENCE_ARRAYS = "reference.npz"
REFERENCE_INDEX = "reference.json"


def save_reference(out_dir: Path, samples: list[list[Any]], outputs: list[list[Any]],
                   input_names: list[str], output_names: list[str]) -> dict:
    """Write sample inputs and the source model's outputs (lists of numpy arrays) to ``out_dir``.

    ``samples[i][j]`` is input ``j`` of sample ``i``; ``outputs[i][k]`` output ``k``. Returns
    stage metadata naming the primary file.
    """
    import numpy as np

    arrays = {}
    for i, (inputs, results) in enumerate(zip(samples, outputs, strict=True)):
        arrays.update({f"s{i}_in{j}": np.asarray(a) for j, a in enumerate(inputs)})
        arrays.update({f"s{i}_out{k}": np.asarray(a) for k, a in enumerate(results)})
    with open(Path(out_dir) / REFERENCE_ARRAYS, "wb") as f:
        np.savez(f, **arrays)
    index = {"samples": len(samples), "inputs": input_names, "outputs": output_names,
             "shapes": [[list(np.shape(a)) for a in inputs] for inputs in samples]}
    (Path(out_dir) / REFERENCE_INDEX).write_text(json.dumps(index, indent=1))
    return {"primary": REFERENCE_ARRAYS, "samples": len(samples), "outputs": output_names}


def load_reference(directory: Path) -> tuple[dict, list[list[Any]], list[list[Any]]]:
    """(index, samples, outputs) as written by ``save_reference``."""
    import numpy as np

    index = json.loads((Path(directory) / REFERENCE_INDEX).read_text())
    with np.load(Path(directory) / REFERENCE_ARRAYS) as data:
        samples = [[data[f"s{i}_in{j}"] for j in range(len(index["inputs"]))] for i in range(index["samples"])]
        outputs = [[data[f"s{i}_out{k}"] for k in range(len(index["outputs"]))] for i in range(index["samples"])]
    return index, samples, outputs


class ValidateOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runner: str
    tolerance: Tolerance


def compare(actual, expected, tolerance: Metrics) -> dict:
    """Metrics of one output against its reference, and whether it is within tolerance."""
    import numpy as np

    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return {"passed": False, "problem": f"shape {list(a.shape)} != reference {list(b.shape)}"}
    if not np.all(np.isfinite(a)):
        return {"passed": False, "problem": "non-finite values (nan/inf)"}
    diff = np.abs(a - b)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    metrics = {"max_abs": float(diff.max(initial=0.0)),
               "max_rel": float((diff / (np.abs(b) + 1e-12)).max(initial=0.0)),
               "cosine": float(np.dot(a.ravel(), b.ravel()) / norm) if norm else 1.0}
    passed = True
    if tolerance.rtol is not None or tolerance.atol is not None:
        atol = tolerance.atol or 0.0
        if tolerance.atol_scale == "output":
            atol *= max(1.0, float(np.abs(b).max(initial=0.0)))
            metrics["atol_used"] = atol
        passed &= bool(np.all(diff <= atol + (tolerance.rtol or 0.0) * np.abs(b)))
    if a.ndim >= 1 and a.shape[-1] > 1:  # a class axis: how often the top score is the reference's
        metrics["top1"] = float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))
    if tolerance.min_cosine is not None:
        passed &= metrics["cosine"] >= tolerance.min_cosine
    if tolerance.min_top1 is not None and "top1" in metrics:
        passed &= metrics["top1"] >= tolerance.min_top1
    return dict(metrics, passed=passed)


def judge_outputs(outputs: list[list[Any]], expected: list[list[Any]], tolerance: dict,
                  names: list[str] | None = None) -> dict:
    """How every output of every sample compares with the reference under ``tolerance`` (a
    ``Tolerance`` as a dict), as validation judges them: ``{"passed", "cosine"`` (the lowest),
    ``"max_abs"`` (the largest), ``"top1"`` (the lowest, for outputs with a class axis)``}``. For a
    stage that must meet validation's bar itself (``exclude: auto``). ``names``: the outputs' names
    in order (the reference's), for rules declared per output; without them every output is
    judged by the precision's own metrics."""
    rule = Tolerance(**tolerance)
    names = names or []
    results = [compare(a, b, rule.rule(names[k]) if k < len(names) else rule)
               for got, wanted in zip(outputs, expected, strict=True)
               for k, (a, b) in enumerate(zip(got, wanted, strict=True))]
    summary: dict[str, Any] = {"passed": all(r["passed"] for r in results)}
    for key, pick in (("cosine", min), ("max_abs", max), ("top1", min)):
        values = [r[key] for r in results if key in r]
        if values:
            summary[key] = round(pick(values), 6)
    if any("problem" in r for r in results):
        summary["problem"] = next(r["problem"] for r in results if "problem" in r)
    return summary


def run_validation(ctx, inputs, options: ValidateOptions) -> dict:
    artifact, reference, *baseline = inputs  # baseline: the fp32 artifact a reduced one was lowered from
    index, samples, expected = load_reference(reference.directory)
    _check_output_names(options.tolerance, index["outputs"], artifact.precision)
    runner = ctx.runner(artifact.kind)
    device = "cuda" if artifact.hardware.startswith("cuda") else "cpu"
    check_cpu_target(artifact.meta.get(CPU_TARGET), f"target '{ctx.target}'")
    if ctx.model is not None:  # the modules registering the model's custom operators, before loading
        import_modules(ctx.model.imports, ctx.root)
    run = runner.load(artifact, device)
    worst: dict[str, dict] = {}
    problems, seen = [], []
    for i, (sample, wanted) in enumerate(zip(samples, expected)):
        got = list(run(sample))
        seen.append(got)
        if len(got) != len(wanted):
            problems.append(f"sample {i}: {len(got)} outputs, reference has {len(wanted)}")
            continue
        for name, a, b in zip(index["outputs"], got, wanted):
            result = compare(a, b, options.tolerance.rule(name))
            if not result["passed"]:
                problems.append(f"sample {i} (input shapes {index['shapes'][i]}) output '{name}': {_describe(result)}")
            previous = worst.get(name)
            if previous is None or result.get("max_abs", float("inf")) > previous.get("max_abs", -1):
                worst[name] = result
    if seen and not problems:
        problems += _strided_problems(run, samples[0], seen[0], index, options.tolerance)
    tolerance = options.tolerance.model_dump(exclude_defaults=True)
    checks = _extra_checks(ctx, artifact, samples, expected, index, run)
    warnings = [f"runner '{options.runner}': {note}" for note in getattr(run, "notes", ())]
    warnings += [f"{c.get('check', '?')}: {w}" for c in checks for w in c.get("warnings", [])]
    failed = [f"{c.get('check', '?')} failed" for c in checks if not c.get("passed", True)]
    if problems or failed:
        layers = _layers(ctx, artifact, baseline, samples, index) if problems else []
        raise StageFailed(f"validation against the source model failed ({len(problems)} mismatch(es), "
                          f"tolerance {tolerance}, runner '{options.runner}'"
                          f"{', ' + ', '.join(failed) if failed else ''}):\n    "
                          + "\n    ".join(problems + warnings + layers),
                          hint=_unrelated_hint(worst, ctx.model))
    shapes = output_signature(ctx.model, index, seen)
    report = {"runner": options.runner, "samples": index["samples"], "tolerance": tolerance,
              "outputs": [dict(v, name=k, **shapes.get(k, {})) for k, v in worst.items()]}
    if checks:
        report["checks"] = checks
    (ctx.out_dir / "validation.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    return {"primary": "validation.json", "report": report, **({"warnings": warnings} if warnings else {})}


def strided(array):
    """The same values in a non-contiguous layout: Fortran order for 2+ axes, a reversed view of
    a reversed copy for one (negative strides). What a caller's slice or transpose hands a runner."""
    import numpy as np

    array = np.asarray(array)
    if array.ndim >= 2 and array.shape[-1] > 1 and array.shape[-2] > 1:
        return np.asfortranarray(array)
    if array.ndim >= 1 and array.shape[-1] > 1:
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    return array


def _strided_problems(run, sample: list, contiguous: list, index: dict, tolerance: Tolerance) -> list[str]:
    """Run the first sample again with every input laid out non-contiguously: a runner must give
    the answer it gave for the contiguous arrays (an AOTInductor package read transposed pixels
    as other numbers until its runner copied them contiguous)."""
    arrays = [strided(a) for a in sample]
    if all(a.flags.c_contiguous for a in arrays):
        return []  # nothing to lay out differently (scalars, single elements)
    try:
        got = list(run(arrays))
    except Exception as exc:  # a runtime refusing strides: the runner must lay them out first
        return [f"sample 0 with non-contiguous input arrays: the runner failed: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}"]
    problems = []
    for name, a, b in zip(index["outputs"], got, contiguous):
        result = compare(a, b, tolerance.rule(name))
        if not result["passed"]:
            problems.append(f"sample 0 with non-contiguous input arrays (same values) output '{name}': "
                            f"{_describe(result)} against the contiguous run: the runner must lay its inputs out "
                            "as the artifact reads them")
    return problems


def output_signature(model, index: dict, seen: list[list[Any]]) -> dict[str, dict]:
    """``{output: {"dtype", "shape"}}`` as the artifact produced them on the samples.

    An axis is named by the manifest dim whose size it had in every sample (the first such dim
    in the inputs' order, usually ``batch``) — when the samples did not vary that size, only at
    the axis the dim holds in the inputs; an axis of one size that no dim explains is that int;
    one that varied unexplained is None. Recorded in the validation report, whence
    artifact.json's ``signature.outputs`` (what a server config or ``buildsys.load`` reads).
    """
    import numpy as np

    if not seen or model is None:
        return {}
    sizes, position = [], {}  # per sample {dim: its size}; {dim: its axis in the first input having it}
    for shapes in index["shapes"]:
        named = {}
        for spec, shape in zip(model.inputs, shapes):
            for axis, (dim, size) in enumerate(zip(spec.shape, shape)):
                if isinstance(dim, str):
                    named.setdefault(dim, size)
                    position.setdefault(dim, axis)
        sizes.append(named)
    result = {}
    for k, name in enumerate(index["outputs"]):
        arrays = [np.asarray(got[k]) for got in seen if k < len(got)]
        if not arrays or len({a.ndim for a in arrays}) != 1:
            continue
        shape = []
        for axis in range(arrays[0].ndim):
            values = [a.shape[axis] for a in arrays]
            # a size the samples never varied names a dim only at that dim's own axis in the
            # inputs: [batch, 10] with batch 10 in every sample keeps its 10 classes static
            dim = next((d for d in position if all(named.get(d) == v for named, v in zip(sizes, values))
                        and (len(set(values)) > 1 or position[d] == axis)), None)
            shape.append(dim if dim is not None else (values[0] if len(set(values)) == 1 else None))
        result[name] = {"dtype": str(arrays[0].dtype), "shape": shape}
    return result


UNRELATED_COSINE = 0.5  # below this on every output, the two computations share no weights


def _unrelated_hint(worst: dict[str, dict], model) -> str | None:
    """A hint when the artifact looks like a different model, not a less precise one: every
    output uncorrelated with the reference. The usual cause is weights initialised at random in
    each process (the reference and the artifact are built in different ones)."""
    cosines = [r["cosine"] for r in worst.values() if "cosine" in r]
    if not cosines or max(abs(c) for c in cosines) >= UNRELATED_COSINE:
        return None
    seen = f"cosine {max(cosines, key=abs):.2f}: the outputs are unrelated to the reference's, not merely imprecise"
    if model is not None and not getattr(model, "weights", None) and not getattr(model, "id", None):
        return (f"{seen}. A model whose weights are initialised at random differs in every process: seed it "
                "(torch.manual_seed(0) in the entrypoint, before building the model) or give 'weights:' in "
                "the manifest's model block")
    return f"{seen}. Check that the weights file matches the entrypoint's architecture"


def _check_output_names(tolerance: Tolerance, outputs: list[str], precision: str) -> None:
    """Refuse rules for outputs the model does not have (a typo would judge nothing): the
    model's output names are known only once it is exported, so this is checked here."""
    import difflib

    unknown = tolerance.unknown_outputs(outputs)
    if not unknown:
        return
    close = {n: difflib.get_close_matches(n, outputs, n=3, cutoff=0.4) for n in unknown}
    hints = "; ".join(f"'{n}': did you mean {', '.join(c)}?" for n, c in close.items() if c)
    raise ManifestError(f"validation.{precision}.outputs names {', '.join(repr(n) for n in unknown)}, not an "
                        f"output of the model (its outputs: {', '.join(outputs)})",
                        hint=hints or "name outputs as the model returns them")


def _extra_checks(ctx, artifact, samples, expected, index, run) -> list[dict]:
    """Results of the ``buildsys_validation_checks`` hook (plugins' checks of this artifact)."""
    if ctx.hook is None:
        return []
    names = {"inputs": index["inputs"], "outputs": index["outputs"]}
    return [r for r in ctx.hook.buildsys_validation_checks(
        artifact=artifact, samples=samples, expected=expected, names=names, run=run, ctx=ctx) if r]


def _layers(ctx, artifact, baseline: list, samples, index: dict) -> list[str]:
    """The layer-wise comparison of a failed reduced-precision artifact with its fp32 baseline
    (``buildsys_compare_layers``): its summary for the failure message, its table in the log."""
    if not baseline or ctx.hook is None:
        return []
    from ..errors import BuildsysError
    from ..layers import summary, table

    try:
        report = ctx.hook.buildsys_compare_layers(artifact=artifact, baseline=baseline[0], samples=samples,
                                                  names={"inputs": index["inputs"], "outputs": index["outputs"]},
                                                  root=ctx.root)
    except BuildsysError as exc:
        return [f"layer-wise comparison not possible: {exc}"]
    if report is None:
        return []
    for line in table(report):
        ctx.log(line)
    return [summary(report), f"the whole table: buildsys debug MANIFEST -t {ctx.target} (and this node's log)"]


def _describe(result: dict) -> str:
    if "problem" in result:
        return result["problem"]
    top1 = f", top-1 agreement {result['top1']:.3f}" if "top1" in result else ""
    return f"max_abs {result['max_abs']:.3g}, max_rel {result['max_rel']:.3g}, cosine {result['cosine']:.6f}{top1}"


@hookimpl
def buildsys_register_kinds():
    return [KindSpec(REFERENCE_KIND, 1, "sample inputs and the source model's outputs on them"),
            KindSpec("validation", 0, "a validation report (artifact vs source model)")]


@hookimpl
def buildsys_register_stages():
    # version 2: the report records each output's dtype and shape (artifact.json signature.outputs);
    # a sample is also run with non-contiguous inputs. 3: a reduced-precision artifact's fp32
    # baseline is a third input, compared layer by layer when validation fails
    return [StageSpec(VALIDATE, consumes=(), produces="validation", run=run_validation, version=3,
                      options=ValidateOptions, deterministic=False,
                      extension_hooks=("buildsys_validation_checks", "buildsys_compare_layers"),
                      description="run the artifact on the reference samples and compare")]
