"""The tensors a repository's config declares: inputs from the manifest, outputs from the input artifact.

Outputs are read, in order, from what a stage recorded (``meta["outputs"]``: name, dtype,
shape), from the ONNX graph for ``onnx``/``onnx.ort`` inputs, or by running the input once at
two batch sizes with its runner on this CPU (an axis whose size follows the batch is the
batch axis, others keep their size). A kind none of these reach here (a TensorRT engine: no
GPU to run it) gets no outputs: Triton's native backends complete them from the model file.
"""

from __future__ import annotations

from dataclasses import dataclass

#: numpy dtype name -> Triton data type (model_config.proto ``DataType``)
TRITON_TYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16", "object": "TYPE_STRING", "str": "TYPE_STRING",
}

#: ONNX TensorProto elem_type -> numpy dtype name
_ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
               8: "object", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}

DYNAMIC = -1


@dataclass(frozen=True)
class Tensor:
    """One input or output: ``shape`` holds sizes, dim names (inputs) or -1 (unknown size)."""

    name: str
    dtype: str
    shape: tuple

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


def triton_type(dtype: str) -> str:
    if dtype not in TRITON_TYPES:
        raise ValueError(f"Triton has no data type for {dtype}")
    return TRITON_TYPES[dtype]


def inputs(model) -> list[Tensor]:
    """The manifest's inputs (``model.inputs``), in order."""
    return [Tensor(spec.name, spec.dtype, tuple(spec.shape)) for spec in model.inputs]


def outputs(artifact, model, runner) -> tuple[list[Tensor] | None, str]:
    """The input artifact's outputs and where they were read from (None: unknown here, and why).

    ``runner`` is the ``RunnerSpec`` for the artifact's kind (or None)."""
    recorded = artifact.meta.get("outputs")
    if isinstance(recorded, list) and recorded and all(isinstance(o, dict) for o in recorded):
        return [Tensor(o["name"], o["dtype"], tuple(o["shape"])) for o in recorded], "recorded by its stage"
    if artifact.kind in ("onnx", "onnx.ort"):
        return onnx_outputs(artifact.primary), "read from the ONNX graph"
    if runner is None:
        return None, f"no runner for {artifact.kind} is installed"
    try:
        run = runner.load(artifact, "cpu")
    except Exception as exc:  # a GPU-only kind, a runtime missing here: Triton completes the config
        return None, f"its runner cannot load it on this CPU ({type(exc).__name__}: {exc})"
    return probed_outputs(run, artifact, model), f"probed with runner '{runner.name}' on this CPU"


def onnx_outputs(path) -> list[Tensor]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    result = []
    for value in graph.output:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else DYNAMIC for d in tensor.shape.dim)
        result.append(Tensor(value.name, _ONNX_TYPES.get(tensor.elem_type, "object"), dims))
    return result


def probed_outputs(run, artifact, model) -> list[Tensor]:
    """Run twice, at two sizes of every dynamic dim: axes that change size are dynamic (-1)."""
    small, large = (_example(model, pick) for pick in (min, max))
    first, second = run(small), run(large)
    names = artifact.meta.get("output_names") or [f"output_{i}" for i in range(len(first))]
    result = []
    for name, a, b in zip(names, first, second):
        dims = tuple(x if x == y and a.ndim == b.ndim else DYNAMIC for x, y in zip(a.shape, b.shape))
        result.append(Tensor(name, a.dtype.name, dims))
    return result


def _example(model, pick) -> list:
    """Zeros of each input's dtype, every dynamic dim at two different sizes it allows."""
    import numpy as np

    arrays = []
    for spec in model.inputs:
        shape = [size if isinstance(size, int) else _size(model.dims[size], pick) for size in spec.shape]
        arrays.append(np.zeros(shape, dtype=spec.dtype))
    return arrays


def _size(dim, pick) -> int:
    ranges = dim.ranges()
    low, high = min(r[0] for r in ranges), max(r[2] for r in ranges)
    # two sizes that differ where the range allows, but stay small: the probe runs on the build host
    low = max(low, 1)
    return low if pick is min else max(low, min(high, low + 1))
