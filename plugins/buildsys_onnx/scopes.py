"""Where an ONNX node came from in the model: its module path and source line, read from the
node metadata torch.onnx (dynamo) writes on every node it emits. One reader for every plugin that
names nodes to users: layer-wise comparison and ``exclude`` (buildsys_precision), the TensorRT
per-layer precision report (buildsys_tensorrt).
"""

from __future__ import annotations

import ast
from pathlib import Path

_WRAPPER = "inner"  # buildsys_torch exports the user's module wrapped, as the attribute ``inner``


def location(node, root: str | None = None) -> dict:
    """``{"module": ..., "source": ...}`` from the exporter's node metadata, where recorded.

    torch.onnx (dynamo) writes ``pkg.torch.onnx.name_scopes`` (the module path, then the FX node:
    ``['', 'encoder.layer.0', 'encoder.layer.0.intermediate.dense', 'linear']``) and
    ``pkg.torch.onnx.stack_trace`` on every node it emits.
    """
    props = {p.key: p.value for p in node.metadata_props}
    found = {"module": module_path(props.get("pkg.torch.onnx.name_scopes"))}
    trace = props.get("pkg.torch.onnx.stack_trace")
    if trace:
        from .diagnose import source_line

        found["source"] = source_line(trace, root)
    return found


def module_path(scopes: str | None) -> str | None:
    """The innermost module of a ``name_scopes`` list (its last item names the FX node, not a module)."""
    try:
        names = ast.literal_eval(scopes) if scopes else []
    except (ValueError, SyntaxError):
        return None
    modules = [n for n in names[:-1] if n]
    if not modules:
        return None
    path = modules[-1]
    if modules[0] == _WRAPPER:  # the model's own path, as its author writes it
        path = path[len(_WRAPPER) + 1:] or None
    return path


def modules_of(model: Path, names: set[str]) -> dict[str, str]:
    """``{node name: module path}`` for the nodes of the graph at ``model`` named in ``names``
    whose module path the exporter recorded."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    found = {n.name: module_path({p.key: p.value for p in n.metadata_props}.get("pkg.torch.onnx.name_scopes"))
             for n in graph.node if n.name in names}
    return {name: path for name, path in found.items() if path}
