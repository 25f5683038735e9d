"""The first-party TensorRT backend: ``onnx`` (any precision) -> ``tensorrt.plan`` engines.

One builder drives either flavour: enterprise TensorRT (``import tensorrt``) when installed,
TensorRT-RTX (``import tensorrt_rtx``) otherwise or when a target asks for it. TensorRT-RTX
builds ahead of time without a GPU, for one or several compute capabilities; enterprise
TensorRT builds on the GPU the engine is for. Precision comes from the graph (strongly typed
networks), so the stage carries its input's precision: fp32, fp16/bf16 from ``onnx.fp16``/
``onnx.bf16``, int8 Q/DQ from ``onnx.int8``. The runner checks an engine's flavour, version and
compute capability against this host before loading it.

Built only on the public API (``buildsys.__all__``); onnx and TensorRT are imported inside the
stage and runner functions, never here.
"""

from __future__ import annotations

from buildsys import KindSpec, Requirement, RunnerSpec, StageSpec, hookimpl

from . import flavours
from .options import PlanOptions, resolve
from .runner import load_runner
from .stage import PRIMARY, run_plan

__version__ = "0.1.0"

ONNX = Requirement("onnx", ">=1.17", "pip install 'buildsys[onnx]'")


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("tensorrt.plan", 4, "a serialized TensorRT or TensorRT-RTX engine for the GPUs in its "
                     "hardware tag", aliases=("tensorrt",))]


@hookimpl
def buildsys_register_stages():
    # version 2: each layer of the per-layer report names its modules (the model's module paths)
    return [StageSpec("tensorrt.plan", consumes=("onnx",), produces="tensorrt.plan", run=run_plan,
                      options=PlanOptions, resolve=resolve, hardware=flavours.policy, deterministic=False,
                      requires=(flavours.requirement(), ONNX), primary=PRIMARY, version=2,
                      description="TensorRT / TensorRT-RTX engine: strongly typed, profiles from the "
                                  "manifest's dims, timing cache, per-layer precision report")]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="tensorrt", kind="tensorrt.plan", load=load_runner,
                       requires=(flavours.requirement(),))]


@hookimpl
def buildsys_tool_versions():
    return flavours.tool_versions()
