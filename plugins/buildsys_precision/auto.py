"""``exclude: auto``: the layers adding the most error kept in higher precision, chosen by building.

The search runs inside the precision stage (``onnx.int8``, ``onnx.fp16``, ``onnx.bf16``), which
needs what validation will judge its output with: the held-out samples and the source model's
outputs on them arrive as the stage's second input (``StageSpec.reference``: the planner adds
the target's reference node when ``exclude`` is ``auto``), and the tolerance validation applies
to the target's precision arrives in the options (``resolve`` copies ``PlanContext.tolerance``).
Both are in the action key: other samples or another tolerance search again.

Round 0 builds with nothing kept and judges the graph on the samples as validation does (the
ONNX runner, ``judge_outputs``). While that fails and rounds remain, round ``r`` ranks the last
graph's layers against the fp32 graph (``layerwise.compare``: the error each node adds; a node
that cannot be kept has its share charged to the lowered node feeding it, see ``_charged``) and
keeps the next ``2**(r-1)`` lowered layers by that charge, then builds and judges again. The
first graph that passes is the output; when none does, the best one is (highest lowest cosine,
then fewest kept), and a warning says what it reached. The rounds run inside one stage: the node
is cached as a whole, its record (``exclude_auto`` in the metadata, so artifact.json and the
lock's digest) lists each round. No time is recorded there: the same inputs give the same bytes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from buildsys import InputArtifact, StageFailed, judge_outputs, load_reference

AUTO = "auto"


def wanted(exclude) -> bool:
    return exclude == AUTO


def search(ctx, inputs, tolerance: dict, rounds: int, build: Callable[[list[str], Path], dict],
           eligible: Callable[[dict, dict], bool]) -> dict:
    """Build with ``build(kept node names, folder) -> metadata`` until ``tolerance`` holds or
    ``rounds`` are spent; the chosen graph's files go to ``ctx.out_dir``; returns its metadata.
    ``eligible(row, metadata)``: whether a layer-wise row's node can be kept (it was lowered)."""
    index, samples, expected = load_reference(inputs[1].directory)
    names = inputs[0].meta.get("input_names") or index["inputs"]
    started, kept, labels, history, best, candidate = time.monotonic(), [], [], [], None, None
    with tempfile.TemporaryDirectory(prefix="buildsys-auto-") as scratch:
        for number in range(rounds + 1):
            added = _next_layers(candidate, inputs[0], samples, names, kept, number, eligible) if number else []
            if number and not added:
                ctx.log(f"exclude: auto: round {number}: no lowered layer adds error; stopping")
                break
            kept, labels = kept + [r["node"] for r in added], labels + [r.get("module") or r["node"] for r in added]
            folder = Path(scratch) / f"round{number}"
            folder.mkdir()
            ctx.progress(number, rounds + 1, f"exclude: auto round {number}: {len(kept)} layer(s) kept")
            candidate = _artifact(ctx, folder, build(list(kept), folder))
            result = judge_outputs(_outputs(ctx, candidate, samples), expected, tolerance, index["outputs"])
            history.append(dict(result, round=number, kept=len(kept), added=labels[len(labels) - len(added):]))
            ctx.log(f"exclude: auto round {number}: {len(kept)} kept, {_metric(result)}")
            if best is None or _score(result, kept) > _score(best[0], best[1]):
                best = (result, list(kept), list(labels), candidate, number)
            if result["passed"]:
                break
        result, kept, labels, candidate, number = best
        for path in candidate.directory.iterdir():
            shutil.copy2(path, Path(ctx.out_dir) / path.name)
    ctx.log(f"exclude: auto: {len(history)} round(s) in {time.monotonic() - started:.1f}s")
    record = {"tolerance": tolerance, "rounds": rounds, "passed": result["passed"], "chosen_round": number,
              "kept": list(dict.fromkeys(labels)), "kept_nodes": kept, "history": history}
    warnings = list(candidate.meta.get("warnings", [])) + ([] if result["passed"] else [note(record)])
    return dict(candidate.meta, exclude_auto=record, **({"warnings": warnings} if warnings else {}))


def _next_layers(candidate, source, samples, names, kept: list[str], number: int, eligible) -> list[dict]:
    """Round ``number``'s new layers: the next ``2**(number-1)`` of ``candidate``'s layer-wise
    ranking that can be kept (lowered, not kept yet), by the error charged to them."""
    from .layerwise import compare

    report = compare(candidate, source, samples, names)
    return _charged(report["nodes"], source.primary,
                    lambda r: r["node"] not in kept and eligible(r, candidate.meta))[:2 ** (number - 1)]


def _charged(rows: list[dict], model: Path, can_keep: Callable[[dict], bool]) -> list[dict]:
    """The rows that can be kept, ranked by the error they add plus what the nodes after them
    that cannot be kept add on top (a Gelu amplifying its quantized MatMul's error, a Softmax its
    scores'): keeping the node that feeds that error removes it, so it is charged to that node,
    found up the inputs that carry the most error. MiniLM: 0.983 without the charging, with
    32 layers kept; see bench/results/accuracy_debug.md."""
    import onnx

    inputs = {n.name: list(n.input) for n in onnx.load(str(model), load_external_data=False).graph.node}
    by_node, by_tensor = {r["node"]: r for r in rows}, {r["tensor"]: r for r in rows}
    total: dict[str, float] = {}
    for row in filter(_adds, rows):
        owner = _owner(row, by_tensor, inputs, can_keep)
        if owner is not None:
            total[owner] = total.get(owner, 0.0) + _value(row["added"])
    order = {r["node"]: i for i, r in enumerate(rows)}
    return sorted((by_node[n] for n in total), key=lambda r: (-total[r["node"]], order[r["node"]]))


def _owner(row: dict, by_tensor: dict, inputs: dict, can_keep, limit: int = 64) -> str | None:
    """The first node from ``row``'s up its most erroneous inputs that can be kept (None: none)."""
    for _ in range(limit):
        if can_keep(row):
            return row["node"]
        fed = [by_tensor[t] for t in inputs.get(row["node"], []) if t in by_tensor]
        if not fed:
            return None
        row = max(fed, key=lambda r: _value(r["error"]))
    return None


def _value(number) -> float:
    return float("inf") if number == "inf" else float(number)


def note(record: dict) -> str:
    """The line a failed search leaves in warnings and in validation's failure message."""
    best = record["history"][record["chosen_round"]]
    return (f"exclude: auto met no tolerance {record['tolerance']} in {len(record['history']) - 1} of "
            f"{record['rounds']} round(s); best: round "
            f"{record['chosen_round']}, {best['kept']} layer(s) kept, {_metric(best)} (raise auto_rounds, or "
            "loosen the target's validation tolerance)")


def validation_note(artifact) -> str | None:
    record = artifact.meta.get("exclude_auto")
    return note(record) if record and not record["passed"] else None


def _adds(row: dict) -> bool:
    return _value(row["added"]) > 0


def _score(result: dict, kept: list[str]) -> tuple:
    return (result["passed"], result.get("cosine", float("-inf")), -len(kept))


def _metric(result: dict) -> str:
    parts = [f"{key} {result[key]:.6g}" for key in ("cosine", "max_abs", "top1") if key in result]
    return ", ".join(parts + ([result["problem"]] if "problem" in result else [])) + \
        (" (passes)" if result["passed"] else " (fails)")


def _artifact(ctx, folder: Path, meta: dict) -> InputArtifact:
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    return InputArtifact("onnx", ctx.precision, ctx.hardware, folder, files, dict(meta))


def _outputs(ctx, artifact: InputArtifact, samples: list) -> list[list]:
    """The candidate's outputs on the samples, from the runner validation uses (on the CPU)."""
    try:
        run = ctx.runner("onnx").load(artifact, "cpu")
        return [list(run(sample)) for sample in samples]
    except Exception as exc:  # bf16: ONNX Runtime's CPU provider has no kernels for it
        raise StageFailed(f"exclude: auto judges each candidate on ONNX Runtime's CPU provider, which cannot run this "
                          f"{artifact.precision} graph: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
                          hint="list the layers to keep in 'exclude:' instead") from None
