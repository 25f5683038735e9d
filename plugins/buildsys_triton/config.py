"""A Triton model configuration (``config.pbtxt``): what it says, and its protobuf text form.

Pure functions of the manifest's model block, the input's signature and the target's
hardware and options; ``render`` writes the text format Triton reads (``model_config.proto``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .signature import DYNAMIC, Tensor, triton_type

#: kind -> (Triton platform, the file name its backend loads from the version folder)
NATIVE = {"onnx": ("onnxruntime_onnx", "model.onnx"), "onnx.ort": ("onnxruntime_onnx", "model.onnx"),
          "tensorrt.plan": ("tensorrt_plan", "model.plan")}

#: Why kinds Triton could seem to take natively go to the python backend instead.
NOT_NATIVE = {
    "torch.exported": "Triton's PyTorch backend loads TorchScript (model.pt) only, not torch.export programs",
    "torch.aoti": "Triton's PyTorch backend loads TorchScript (model.pt) only, not AOTInductor packages",
}


class Symbol(str):
    """An enum value, written bare (``KIND_CPU``), not quoted."""


@dataclass(frozen=True)
class Serving:
    """How the repository serves the input: a native platform with its file, or the python backend."""

    platform: str | None
    model_file: str | None
    reason: str

    @property
    def python(self) -> bool:
        return self.platform is None


def serving(kind: str, backend: str) -> Serving:
    """How to serve ``kind`` with ``backend`` (``auto``, ``python`` or a native platform)."""
    if backend == "python" and kind in NATIVE:
        return Serving(None, None, "backend: python was asked for")
    if backend != "python" and kind in NATIVE:
        platform, filename = NATIVE[kind]
        return Serving(platform, filename, f"Triton serves {kind} natively ({platform})")
    why = NOT_NATIVE.get(kind, f"Triton has no backend for {kind}")
    return Serving(None, None, f"{why}: the python backend runs it through buildsys.load")


def max_batch_size(model, outputs: list[Tensor] | None) -> int:
    """The batch dim's largest size when every input starts with the same dynamic dim whose range
    starts at 1 (Triton batches from 1 up) and every known output starts with a dynamic axis; else 0."""
    firsts = {spec.shape[0] if spec.shape else None for spec in model.inputs}
    if len(firsts) != 1:
        return 0
    name = firsts.pop()
    if not isinstance(name, str) or name not in model.dims:
        return 0
    ranges = model.dims[name].ranges()
    if min(r[0] for r in ranges) > 1:
        return 0
    if outputs is not None and any(not o.shape or o.shape[0] != DYNAMIC for o in outputs):
        return 0
    return max(r[2] for r in ranges)


def dims(shape, batched: bool) -> list[int]:
    """Config dims: the batch axis left out when batched, dynamic axes as -1."""
    sizes = [size if isinstance(size, int) else DYNAMIC for size in shape]
    return sizes[1:] if batched else sizes


def model_config(name: str, how: Serving, model, outputs: list[Tensor] | None, hardware: str,
                 precision: str, options, inputs: list[Tensor]) -> dict:
    """The configuration as a dict of ``model_config.proto`` fields (rendered by ``render``)."""
    batch = max_batch_size(model, outputs)
    config: dict = {"name": name}
    config.update({"platform": how.platform} if not how.python else {"backend": "python"})
    config["max_batch_size"] = batch
    config["input"] = [_tensor(t, batch > 0) for t in inputs]
    if outputs is not None:
        config["output"] = [_tensor(t, batch > 0) for t in outputs]
    gpu = hardware.startswith("cuda")
    config["instance_group"] = [{"count": options.instance_count, "kind": Symbol("KIND_GPU" if gpu else "KIND_CPU")}]
    if batch > 0 and options.dynamic_batching:
        config["dynamic_batching"] = ({"max_queue_delay_microseconds": options.max_queue_delay_microseconds}
                                      if options.max_queue_delay_microseconds else {})
    accelerator = execution_accelerator(how, options.accelerator, gpu, precision)
    if accelerator is not None:
        config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [accelerator]}}
    return config


def execution_accelerator(how: Serving, accelerator: str, gpu: bool, precision: str) -> dict | None:
    """ONNX Runtime's TensorRT provider where asked for; refuses where Triton would not apply it."""
    if accelerator == "none":
        return None
    if how.platform != "onnxruntime_onnx" or not gpu:
        raise ValueError("accelerator: tensorrt applies to onnxruntime_onnx models on a GPU only "
                         f"(this one: {how.platform or 'python backend'}, {'GPU' if gpu else 'CPU'})")
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"ONNX Runtime's TensorRT accelerator takes precision_mode FP32 or FP16, not {precision}")
    return {"name": "tensorrt", "parameters": {"precision_mode": precision.upper()}}


def _tensor(tensor: Tensor, batched: bool) -> dict:
    return {"name": tensor.name, "data_type": Symbol(triton_type(tensor.dtype)), "dims": dims(tensor.shape, batched)}


# -- text format --------------------------------------------------------------------------------


def render(config: dict) -> str:
    """``config`` in protobuf text format: messages in braces, repeated fields as lists, maps as
    ``key``/``value`` entries."""
    return "".join(_field(key, value, 0) for key, value in config.items())


def _field(key: str, value, depth: int) -> str:
    pad = "  " * depth
    if isinstance(value, dict) and key == "parameters":  # map<string, string>
        return "".join(f"{pad}parameters {{ key: {json.dumps(k)} value: {json.dumps(str(v))} }}\n"
                       for k, v in value.items())
    if isinstance(value, dict):
        return f"{pad}{key} {{\n{''.join(_field(k, v, depth + 1) for k, v in value.items())}{pad}}}\n"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        items = ",\n".join(f"{pad}  {{\n{''.join(_field(k, v, depth + 2) for k, v in item.items())}{pad}  }}"
                           for item in value)
        return f"{pad}{key} [\n{items}\n{pad}]\n"
    if isinstance(value, list):
        return f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]\n"
    return f"{pad}{key}: {_scalar(value)}\n"


def _scalar(value) -> str:
    if isinstance(value, Symbol):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)
