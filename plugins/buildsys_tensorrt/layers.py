"""The layer report: which precision and kernel each engine layer got.

This is how a user sees that INT8 or fp16 kernels were actually chosen. Built with detailed
profiling verbosity, TensorRT describes every engine layer: TensorRT-RTX in its verbose build
log (``Layers:`` followed by one ``Name: ..., LayerType: ..., Inputs: [...], Constants: [...],
Outputs: [...], TacticName: ..., Metadata: ...`` line per layer), because its plans cannot be
deserialized without a GPU; enterprise TensorRT through the engine inspector's JSON, after
deserializing on the GPU it built on. A layer's precision is the narrowest element type among
its inputs and weights (a quantize layer reads fp32; an int8 GEMM reads int8). Each layer names
the ONNX nodes it came from (``onnx``, from the layer metadata) and their module paths in the
model (``modules``, from the ONNX node metadata), so a layer left in fp32 is named as its author
knows it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

# Narrowest first; TensorRT's type names as the reports spell them.
PRECISIONS = (("fp4", ("FP4", "Fp4")), ("int4", ("Int4", "INT4")), ("fp8", ("FP8", "Fp8")),
              ("int8", ("Int8", "INT8")), ("fp16", ("Half", "FP16")), ("bf16", ("BF16", "Bf16", "BFloat16")),
              ("fp32", ("Float", "FP32")))
_LAYER = re.compile(r"^Name: (?P<name>.*?), LayerType: (?P<type>[^,]*), Inputs: (?P<inputs>.*?), "
                    r"Constants: (?P<constants>.*?), Outputs: (?P<outputs>.*?), TacticName: (?P<tactic>.*?), "
                    r"StreamId: .*?, Metadata:(?P<meta>.*)$")
_DTYPE = re.compile(r"Datatype: (\w+)")
_ONNX = re.compile(r"\[ONNX Layer: ([^\]]+)\]")


def precision_of(types: list[str]) -> str:
    """The narrowest precision among TensorRT type names (``none`` for a layer without tensors)."""
    for precision, names in PRECISIONS:
        if any(t in names for t in types):
            return precision
    return types[0].lower() if types else "none"  # integer-only layers (shape and index arithmetic)


def from_log(message: str) -> list[dict]:
    """Layers from TensorRT-RTX's verbose ``Layers:`` build message."""
    layers = []
    for line in message.splitlines():
        match = _LAYER.match(line.strip())
        if match is None:
            continue
        reads = _DTYPE.findall(match["inputs"]) + _DTYPE.findall(match["constants"])
        layers.append({"name": match["name"], "type": match["type"], "precision": precision_of(reads),
                       "inputs": sorted(set(_DTYPE.findall(match["inputs"]))),
                       "outputs": sorted(set(_DTYPE.findall(match["outputs"]))),
                       "tactic": match["tactic"].strip(), "onnx": _ONNX.findall(match["meta"])})
    return layers


def from_inspector(text: str) -> list[dict]:
    """Layers from the engine inspector's JSON (enterprise TensorRT; not exercised on these machines)."""
    layers = []
    for layer in json.loads(text).get("Layers", []):
        if isinstance(layer, str):  # LAYER_NAMES_ONLY verbosity: names and nothing else
            layers.append({"name": layer, "type": "", "precision": "none", "inputs": [], "outputs": [],
                           "tactic": "", "onnx": []})
            continue
        inputs = [_inspector_type(t) for t in layer.get("Inputs", [])]
        outputs = [_inspector_type(t) for t in layer.get("Outputs", [])]
        layers.append({"name": layer.get("Name", ""), "type": layer.get("LayerType", ""),
                       "precision": precision_of(inputs), "inputs": sorted(set(inputs)),
                       "outputs": sorted(set(outputs)), "tactic": str(layer.get("TacticName", "")),
                       "onnx": _ONNX.findall(str(layer.get("Metadata", "")))})
    return layers


def _inspector_type(tensor: dict) -> str:
    """The inspector writes formats like 'Row major linear FP16 format' and types like 'Half'."""
    text = f"{tensor.get('Format/Datatype', '')} {tensor.get('Datatype', '')}"
    return next((name for _, names in PRECISIONS for name in names if name in text.split()), text.strip())


def with_modules(layers: list[dict], model: Path) -> list[dict]:
    """``layers`` with ``modules``: the model's module paths of each layer's ONNX nodes (``onnx``),
    from the exporter's node metadata in the graph at ``model`` (``buildsys_onnx.scopes``), in
    the order the nodes are named, each once. A fused layer names every module it fused; a layer
    TensorRT added (a reformat) or a graph without the metadata gives ``[]``."""
    from buildsys_onnx.scopes import modules_of

    known = modules_of(model, {name for layer in layers for name in layer.get("onnx", [])})
    return [dict(layer, modules=list(dict.fromkeys(known[n] for n in layer.get("onnx", []) if n in known)))
            for layer in layers]


def summary(layers: list[dict]) -> dict:
    """artifact.json's report: counts of layers per precision and the layers themselves."""
    counts = Counter(layer["precision"] for layer in layers)
    return {"count": len(layers), "precision_counts": dict(sorted(counts.items())), "per_layer": layers}
