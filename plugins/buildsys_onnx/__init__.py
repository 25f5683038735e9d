"""The first-party ONNX backend: export from ``torch.exported``, ORT optimization, ORT runner.

Kinds: ``onnx`` (ladder 2, portable ONNX graph) and ``onnx.ort`` (ladder 3, optimized by and
for ONNX Runtime). Stages: ``onnx.export`` (torch.exported -> onnx, opset chosen at plan time
from what the exporter and the manifest's consumers accept) and ``onnx.ort`` (onnx -> onnx.ort).
Runners: ONNX Runtime for both kinds, so every target is validated against the source model.
Source ``framework: onnx`` (``source``): an existing .onnx file, kind ``onnx.file``, imported
by ``onnx.import`` and run for reference outputs by ``onnx.reference``.
Other plugins extend the exporter through its own hook, ``buildsys_onnx_translations``
(``buildsys_onnx.hookspecs``, added through ``buildsys_addhooks``).

Built only on the public API (``buildsys.__all__``), like a third-party plugin; torch, onnx and
onnxruntime are imported inside the stage and runner functions, never here.
"""

from __future__ import annotations

from buildsys import KindSpec, Requirement, RunnerSpec, SourceSpec, StageSpec, hookimpl

from . import opsets, source, versions
from .export import run_export
from .options import ExportOptions, OptimizeOptions
from .runtime import load_runner, optimize_policy, run_optimize

ONNX = Requirement("onnx", ">=1.17", "pip install 'buildsys[onnx]'")

__version__ = "0.1.0"


@hookimpl
def buildsys_addhooks(pluginmanager):
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def buildsys_register_kinds():
    return [
        KindSpec("onnx", 2, "an ONNX graph (model.onnx; initializers in model.onnx.data over 2 GB)"),
        KindSpec("onnx.file", 1, "an existing .onnx file named by model.entrypoint (framework: onnx)",
                 stored=False),
        KindSpec("onnx.ort", 3, "an ONNX graph optimized by ONNX Runtime (runs on ORT only)",
                 aliases=("ort",)),
    ]


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="onnx", kind="onnx.file", fingerprint=source.fingerprint, load=source.load,
                       signature=source.signature, requires=(ONNX,))]


# versions 2: a source's companion programs (a seq2seq encoder) are exported / optimized beside the primary
@hookimpl
def buildsys_register_stages():
    ort = versions.ort_requirement()
    return [
        StageSpec("onnx.import", consumes=("onnx.file",), produces="onnx", run=source.run_import,
                  requires=(ONNX,), primary="model.onnx",
                  description="an existing .onnx (framework: onnx): full onnx.checker, copied with its data"),
        StageSpec("onnx.reference", consumes=("onnx.file",), produces="reference", run=source.run_reference,
                  requires=(ONNX, ort), deterministic=False,
                  description="the source graph's outputs in ONNX Runtime fp32 on the CPU"),
        StageSpec("onnx.export", consumes=("torch.exported",), produces="onnx", run=run_export,
                  options=ExportOptions, resolve=opsets.resolve, requires=versions.EXPORT_REQUIRES,
                  primary="model.onnx", version=2, extension_hooks=("buildsys_onnx_translations",),
                  description="torch.onnx dynamo export; opset checked, dims named, onnx.checker"),
        StageSpec("onnx.ort", consumes=("onnx",), produces="onnx.ort", run=run_optimize,
                  options=OptimizeOptions, hardware=optimize_policy, requires=(ort,),
                  primary="model.onnx", version=2,
                  description="ONNX Runtime graph optimization (level 'all' is host-specific)"),
    ]


@hookimpl
def buildsys_register_runners():
    ort = versions.ort_requirement()
    # ORT's CPU provider has no bf16 kernels for Conv/MatMul: bf16 graphs are for TensorRT/GPUs.
    runs = ("fp32", "fp16", "int8")
    return [RunnerSpec(name="onnxruntime", kind="onnx", load=load_runner, requires=(ort,), precisions=runs),
            RunnerSpec(name="onnxruntime-optimized", kind="onnx.ort", load=load_runner, requires=(ort,),
                       precisions=runs)]


@hookimpl
def buildsys_tool_versions():
    return versions.tool_versions()
