"""buildsys-openvino: ONNX graphs to OpenVINO IR for Intel CPUs, run by the OpenVINO runtime.

A third-party backend, installed as its own distribution and built only on ``buildsys.__all__``.

Kinds: ``openvino.ir`` (ladder 3; format aliases ``openvino`` and ``ov``): an OpenVINO IR pair,
``model.xml`` (the graph) and ``model.bin`` (the weights).
Stages: ``openvino.convert`` (onnx -> openvino.ir, dynamic dims bounded to the manifest's
ranges) and ``openvino.fp16`` (openvino.ir -> openvino.ir at precision fp16: weights stored as
fp16, half the size). Runner: the OpenVINO CPU plugin, so every target is validated against the
source model's outputs.

Hardware policy: the IR is portable (tag ``any``). OpenVINO compiles it for the CPU that loads
it, choosing kernels for that CPU's ISA then; a compiled blob (``CompiledModel.export_model``)
would be tied to one CPU's ISA and one OpenVINO release, i.e. a host-tagged ladder-4 kind that
must be rebuilt per machine. The IR plus OpenVINO's own model cache (``CACHE_DIR``) on the
target gives the same fast second load without that, so this plugin ships the IR only.

openvino is imported inside the stage and runner functions, never at module import.
"""

from __future__ import annotations

from buildsys import HardwarePolicy, KindSpec, RunnerSpec, StageSpec, hookimpl

from .convert import ConvertOptions, run_convert, run_fp16
from .runtime import OPENVINO, load_runner, openvino_version

__version__ = "0.1.0"

#: The buildsys plugin contract versions this plugin supports.
BUILDSYS_CONTRACT = ">=1.1,<2"

KIND = "openvino.ir"


@hookimpl
def buildsys_register_kinds():
    return [KindSpec(KIND, 3, "an OpenVINO IR (model.xml + model.bin), compiled by the runtime where it loads",
                     aliases=("openvino", "ov"))]


@hookimpl
def buildsys_register_stages():
    return [
        StageSpec("openvino.convert", consumes=("onnx",), produces=KIND, run=run_convert,
                  options=ConvertOptions, hardware=HardwarePolicy.PORTABLE, requires=(OPENVINO,),
                  primary="model.xml", description="ONNX -> OpenVINO IR (openvino.convert_model)"),
        StageSpec("openvino.fp16", consumes=(KIND,), produces=KIND, precision="fp16", run=run_fp16,
                  hardware=HardwarePolicy.PORTABLE, requires=(OPENVINO,), primary="model.xml",
                  description="store the IR's weights as fp16 (OpenVINO weight compression)"),
    ]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="openvino", kind=KIND, load=load_runner, requires=(OPENVINO,))]


@hookimpl
def buildsys_tool_versions():
    version = openvino_version()
    return {"openvino": version} if version else {}
