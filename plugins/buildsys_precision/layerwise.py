"""Layer-wise comparison: where a reduced-precision ONNX graph departs from its fp32 graph.

Both graphs run on ONNX Runtime's CPU provider, unoptimized (fusions would remove the tensors),
on the held-out samples, with every intermediate tensor they share exposed as a graph output.
Tensors are matched by name: lowering keeps the fp32 graph's node outputs and only adds nodes
(Cast for fp16/bf16, QuantizeLinear/DequantizeLinear for int8), so a tensor of the fp32 graph
that the reduced graph still computes with a node that is not one of those is the same value,
in the other precision. The graphs run a chunk of tensors at a time and the statistics are
accumulated sample by sample, so memory stays at one chunk of one sample's activations.

The measure. For each matched tensor ``t`` (all samples together) the relative error is
``e(t) = ||r - f|| / ||f||`` (``f`` the fp32 values, ``r`` the reduced ones, L2 norms): unlike an
absolute error it is comparable between layers whose activations differ in scale by orders of
magnitude, and ``1 - e²/2`` is close to the cosine when the error is small. A node is ranked by
the error it *adds*: ``e(output) - max(e(input))`` over its activation inputs (graph inputs and
weights count 0, so a weight's quantization error is charged to the node using it). Error that a
node merely passes on (every node after a broken one inherits it) adds about nothing; a node that
clips, overflows or rounds badly adds its own. A reduced output that is not finite where the
fp32 one is has error ``inf`` (fp16 overflow) and is ranked first; nodes fed an ``inf`` error
add nothing.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildsys_onnx.scopes import location

#: What lowering inserts: these nodes have no fp32 counterpart to compare with.
INSERTED = frozenset({"Cast", "QuantizeLinear", "DequantizeLinear", "Constant"})
CHUNK = 512  # tensors exposed per session: bounds the activations held at once
_TWO_GB = 2**31 - 1


@dataclass
class _Stats:
    """Running sums of one tensor over the samples."""

    diff2: float = 0.0
    ref2: float = 0.0
    low2: float = 0.0
    dot: float = 0.0
    max_abs: float = 0.0
    nonfinite: int = 0

    def add(self, ref, low) -> None:
        import numpy as np

        f = np.asarray(ref, dtype=np.float64).ravel()
        r = np.asarray(low, dtype=np.float64).ravel()
        bad = ~np.isfinite(r) & np.isfinite(f)
        self.nonfinite += int(bad.sum())
        r = np.where(bad, 0.0, r)
        d = r - f
        self.diff2 += float(d @ d)
        self.ref2 += float(f @ f)
        self.low2 += float(r @ r)
        self.dot += float(f @ r)
        self.max_abs = max(self.max_abs, float(np.abs(d).max(initial=0.0)))

    @property
    def error(self) -> float:
        if self.nonfinite:
            return math.inf
        return math.sqrt(self.diff2) / math.sqrt(self.ref2) if self.ref2 else math.sqrt(self.diff2)

    @property
    def cosine(self) -> float:
        norm = math.sqrt(self.ref2 * self.low2)
        return self.dot / norm if norm else 1.0


def exposed_session(model, tensors: list[str]):
    """An unoptimized CPU ONNX Runtime session of ``model`` (a loaded ModelProto, changed in
    place) that also returns ``tensors``; a graph over 2 GB is written with its data beside it."""
    import onnx
    import onnxruntime as ort

    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in tensors if t not in present)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    if model.ByteSize() < _TWO_GB:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory(prefix="buildsys-layers-") as tmp:
        path = str(Path(tmp) / "model.onnx")
        onnx.save(model, path, save_as_external_data=True, location="model.onnx.data")
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def matched(fp32, low) -> list[tuple[Any, str]]:
    """``(fp32 node, tensor)`` for each fp32 node whose first output the reduced graph computes
    with a node of its own (not an inserted Cast / Q / DQ), in the fp32 graph's order."""
    producers = {out: node.op_type for node in low.graph.node for out in node.output}
    pairs = []
    for node in fp32.graph.node:
        if node.op_type in INSERTED or not node.output or not node.output[0]:
            continue
        if producers.get(node.output[0], "Cast") not in INSERTED:
            pairs.append((node, node.output[0]))
    return pairs


def measure(fp32_path: Path, low_path: Path, feeds: list[dict], chunk: int = CHUNK,
            progress=None) -> tuple[list[tuple[Any, str]], dict[str, _Stats]]:
    """Statistics of every matched tensor over ``feeds`` (dicts by input name)."""
    import onnx

    fp32 = onnx.load(str(fp32_path))
    pairs = matched(fp32, onnx.load(str(low_path), load_external_data=False))
    tensors = [t for _, t in pairs]
    stats: dict[str, _Stats] = {}
    for start in range(0, len(tensors), chunk):
        part = tensors[start:start + chunk]
        if progress:
            progress(start, len(tensors), f"comparing tensors {start + 1}-{start + len(part)} of {len(tensors)}")
        sessions = [exposed_session(onnx.load(str(p)), part) for p in (fp32_path, low_path)]
        for feed in feeds:
            ref, low = (_run(s, part, feed) for s in sessions)
            for name in part:
                if _floating(ref[name]) and _floating(low[name]) and ref[name].shape == low[name].shape:
                    stats.setdefault(name, _Stats()).add(ref[name], low[name])
        del sessions
    return [(n, t) for n, t in pairs if t in stats], stats


def _run(session, tensors: list[str], feed: dict) -> dict:
    accepted = {i.name for i in session.get_inputs()}
    return dict(zip(tensors, session.run(tensors, {k: v for k, v in feed.items() if k in accepted})))


def _floating(array) -> bool:
    import numpy as np

    return np.issubdtype(np.asarray(array).dtype, np.floating)


def rank(pairs: list[tuple[Any, str]], stats: dict[str, _Stats], root: str | None = None) -> list[dict]:
    """One row per compared node, the one adding the most error first (ties: graph order)."""
    rows = []
    for order, (node, tensor) in enumerate(pairs):
        here = stats[tensor]
        inherited = max((stats[i].error for i in node.input if i in stats), default=0.0)
        added = 0.0 if math.isinf(inherited) else here.error - inherited  # nothing is added to inf
        rows.append(dict(location(node, root), node=node.name, op_type=node.op_type, tensor=tensor,
                         added=added, error=here.error, max_abs=here.max_abs, cosine=here.cosine,
                         nonfinite=here.nonfinite, order=order))
    rows.sort(key=lambda r: (-r["added"], r["order"]))
    return [_json_safe(r) for r in rows]


def _json_safe(row: dict) -> dict:
    """inf is not JSON: an overflowed tensor's error is written as the string "inf"."""
    return {k: ("inf" if isinstance(v, float) and math.isinf(v) else (round(v, 6) if isinstance(v, float) else v))
            for k, v in row.items() if k != "order"}


def compare(artifact, baseline, samples: list[list[Any]], input_names: list[str], root=None,
            progress=None) -> dict:
    """The layer-wise report of ``artifact`` against ``baseline`` (the fp32 graph it was lowered
    from) on ``samples`` (lists of arrays in ``input_names`` order): ``{"samples", "compared",
    "measure", "nodes": [row, ...]}``, the nodes ranked by the error they add."""
    import numpy as np

    feeds = [dict(zip(input_names, (np.asarray(a) for a in sample))) for sample in samples]
    pairs, stats = measure(baseline.primary, artifact.primary, feeds, progress=progress)
    return {"samples": len(samples), "compared": len(pairs), "measure": MEASURE,
            "nodes": rank(pairs, stats, None if root is None else str(root))}


MEASURE = ("added = relative L2 error of the node's output minus the largest of its inputs' "
           "(error = ||reduced - fp32|| / ||fp32|| over the held-out samples)")

