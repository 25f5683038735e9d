"""Names in the exported graph: inputs and outputs after the manifest, dynamic axes after its dims.

The exporter can rename inputs and outputs itself, but it does not check for clashes: an output
called ``embedding`` in a model with an ``aten.embedding`` node gave a graph with two values
named ``embedding``, which onnx.checker rejects. So the graph is exported with the exporter's
names and renamed here, on the onnx_ir model, moving any clashing internal value aside first.
Dynamic axes come out as the exporter's symbols (``s77``) and are renamed on the proto.
"""

from __future__ import annotations

import re

from buildsys import StageFailed


def name_io(model, inputs: list[str] | None, outputs: list[str] | None) -> None:
    """Rename the graph inputs/outputs of an onnx_ir ``model`` (lists whose length does not match are ignored)."""
    graph = model.graph
    if outputs and len(outputs) == len(graph.outputs):
        _separate_outputs(graph)
    values = _values(graph)
    pairs = []
    if inputs and len(inputs) == len(graph.inputs):
        pairs += list(zip(list(graph.inputs), inputs))
    if outputs and len(outputs) == len(graph.outputs):
        pairs += list(zip(list(graph.outputs), outputs))
    for value, wanted in pairs:
        clash = values.get(wanted)
        if clash is not None and clash is not value:
            clash.name = _free(wanted, values)
            values[clash.name] = clash
        values.pop(value.name, None)
        value.name = wanted
        values[wanted] = value


def _values(graph) -> dict:
    import onnx_ir as ir

    found = {v.name: v for v in graph.inputs if v.name}
    found.update(dict(graph.initializers))
    for node in ir.traversal.RecursiveGraphIterator(graph):
        found.update({v.name: v for v in node.outputs if v.name})
    return found


def _separate_outputs(graph) -> None:
    """An output that is also an input, or listed twice, gets its own Identity so it can be named."""
    import onnx_ir as ir

    seen = set(id(v) for v in graph.inputs)
    for index, value in enumerate(list(graph.outputs)):
        if id(value) in seen:
            identity = ir.node("Identity", inputs=[value])
            identity.outputs[0].type, identity.outputs[0].shape = value.type, value.shape
            graph.append(identity)
            graph.outputs[index] = identity.outputs[0]
        seen.add(id(graph.outputs[index]))


def _free(name: str, taken: dict) -> str:
    index = 1
    while f"{name}_{index}" in taken:
        index += 1
    return f"{name}_{index}"


def name_dynamic_dims(model, dynamic_dims: dict) -> dict:
    """Rename the exporter's symbols (``s77``) after the manifest's dims, everywhere; verify inputs.

    ``model`` is a ModelProto; ``dynamic_dims`` the torch.exported meta, ``{input: {axis: dim}}``.
    """
    graph_inputs = {i.name: i for i in model.graph.input}
    rename = {}
    for name, axes in dynamic_dims.items():
        shape = graph_inputs[name].type.tensor_type.shape if name in graph_inputs else None
        for axis, dim in axes.items():
            if shape is not None and int(axis) < len(shape.dim) and shape.dim[int(axis)].dim_param:
                rename.setdefault(shape.dim[int(axis)].dim_param, dim)
    _rename_symbols(model, rename)
    _verify_dims(graph_inputs, dynamic_dims)
    return {name: {str(axis): dim for axis, dim in axes.items()} for name, axes in dynamic_dims.items()}


def _rename_symbols(model, rename: dict[str, str]) -> None:
    if not rename:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(rename, key=len, reverse=True))) + r")\b")
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(lambda m: rename[m.group(1)], dim.dim_param)


def _verify_dims(graph_inputs: dict, dynamic_dims: dict) -> None:
    wrong = []
    for name, axes in dynamic_dims.items():
        if name not in graph_inputs:
            continue  # an input the model does not use is dropped by the exporter
        dims = graph_inputs[name].type.tensor_type.shape.dim
        for axis, dim in axes.items():
            got = (dims[int(axis)].dim_param or dims[int(axis)].dim_value) if int(axis) < len(dims) else None
            if got != dim:
                wrong.append(f"input '{name}' axis {axis} is {got!r}, expected dynamic dim '{dim}'")
    if wrong:
        raise StageFailed("the ONNX graph lost dynamic dims of the ExportedProgram: " + "; ".join(wrong),
                          hint="an axis exported with size 1, or a model that fixes its size, specialises it")
