"""``exclude`` entries of the precision stages: which nodes stay in higher precision.

An entry is an op type (``op:Softmax``), a node-name glob (``node_MatMul_5*``), or a glob over
the model's module paths (``encoder.layer.*.intermediate.dense``), which the exporter records on
every node it emits (``buildsys_onnx.scopes.location``): module paths are the model author's names and
survive exporter upgrades that rename nodes. An entry that matches nothing is a manifest error
(exit 2) naming it and the closest names the graph has, so a typo cannot pass silently.
"""

from __future__ import annotations

import difflib
import fnmatch
from pathlib import Path

from buildsys import ManifestError

from buildsys_onnx.scopes import location

OP = "op:"


def expand(model: Path, patterns: list[str], where: str) -> list[str]:
    """Names of the nodes of the graph at ``model`` that ``patterns`` select, in graph order."""
    return expand_each([model], patterns, where)[0]


def expand_each(models: list[Path], patterns: list[str], where: str) -> list[list[str]]:
    """``expand`` over the graphs of one artifact (a seq2seq decoder step and its encoder): the
    nodes each graph's patterns select; a pattern must match in one of them at least."""
    if not patterns:
        return [[] for _ in models]
    import onnx

    graphs = []
    for model in models:
        nodes = [n for n in onnx.load(str(model), load_external_data=False).graph.node if n.name]
        graphs.append((nodes, {n.name: location(n)["module"] for n in nodes}))
    chosen: list[list[str]] = [[] for _ in models]
    for pattern in patterns:
        found = False
        for (nodes, modules), picked in zip(graphs, chosen):
            matched = [n.name for n in nodes if _matches(pattern, n, modules[n.name])]
            picked += [m for m in matched if m not in picked]
            found = found or bool(matched)
        if not found:
            nodes, modules = graphs[0]
            raise ManifestError(f"{where}: '{pattern}' matches no node, op type or module path of the graph",
                                hint=_close(pattern, nodes, modules))
    return chosen


def _matches(pattern: str, node, module: str | None) -> bool:
    if pattern.startswith(OP):
        return node.op_type == pattern[len(OP):]
    return fnmatch.fnmatchcase(node.name, pattern) or (module is not None and fnmatch.fnmatchcase(module, pattern))


def _close(pattern: str, nodes, modules: dict) -> str:
    if pattern.startswith(OP):
        known = sorted({n.op_type for n in nodes})
        close = difflib.get_close_matches(pattern[len(OP):], known, n=5, cutoff=0.4)
        return f"close op types: {', '.join(OP + c for c in close) or 'none'}; the graph has {', '.join(known)}"
    names = sorted({m for m in modules.values() if m} | {n.name for n in nodes})
    close = difflib.get_close_matches(pattern, names, n=5, cutoff=0.4)
    return (f"close matches: {', '.join(close) or 'none'}; write an op type (op:MatMul), a node-name glob or a "
            "module path glob (encoder.layer.*.intermediate.dense)")
