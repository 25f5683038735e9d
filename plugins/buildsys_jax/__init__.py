"""The JAX backend: pure JAX functions as a source, jax.export to StableHLO, XLA executables.

Kinds: ``jax.function`` (the source, not stored: ``apply(params, *inputs)`` and its params) ->
``stablehlo`` (ladder 2: jax.export lowered for a set of platforms, tagged with that set, e.g.
``cpu.cuda.tpu``, from any host) -> ``xla.executable`` (ladder 4: compiled by XLA for a device
of this host, tagged with the device it was actually compiled for). ``jax.reference`` computes
the jitted function's outputs every artifact is validated against; both kinds have runners.

Built only on the public API (``buildsys.__all__``); jax is imported inside the stage and
runner functions, never here.
"""

from __future__ import annotations

from buildsys import HardwarePolicy, KindSpec, RunnerSpec, SourceSpec, StageSpec, hookimpl, model_files

from . import versions
from .compile import CompileOptions, run_compile
from .export import ExportOptions, output_tag, resolve, run_export
from .runtime import load_stablehlo, load_xla, run_reference

__version__ = "0.1.0"


def _load(model, root):
    from .source import load_model

    return load_model(model, root)


@hookimpl
def buildsys_register_kinds():
    return [
        KindSpec("jax.function", 1, "a pure JAX function and its params, from the manifest's entrypoint",
                 stored=False),
        KindSpec("stablehlo", 2, "jax.export StableHLO (serialized Exported + .mlir text), lowered for "
                 "a set of XLA platforms", aliases=("jax.export", "jax-export")),
        KindSpec("xla.executable", 4, "XLA executables compiled for one device of the build host, one "
                 "per input size", aliases=("xla",)),
    ]


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="jax", kind="jax.function", fingerprint=model_files, load=_load,
                       requires=versions.REQUIRES)]


@hookimpl
def buildsys_register_stages():
    return [
        StageSpec("jax.export", consumes=("jax.function",), produces="stablehlo", run=run_export,
                  options=ExportOptions, resolve=resolve, output_tag=output_tag,
                  hardware=HardwarePolicy.AHEAD_OF_TIME, requires=versions.REQUIRES, primary="model.jax_exported",
                  description="jax.export with the manifest's symbolic dims, for the platforms asked (any host)"),
        StageSpec("jax.reference", consumes=("jax.function",), produces="reference", run=run_reference,
                  requires=versions.REQUIRES, deterministic=False,
                  description="the jitted function's outputs on the samples, on the CPU"),
        StageSpec("xla.compile", consumes=("stablehlo",), produces="xla.executable", run=run_compile,
                  options=CompileOptions, hardware=HardwarePolicy.HOST, deterministic=False,
                  requires=versions.REQUIRES, primary="model.xla.zip",
                  description="XLA executables for a device of this host, one per size, serialized"),
    ]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="jax.export", kind="stablehlo", load=load_stablehlo, requires=versions.REQUIRES),
            RunnerSpec(name="xla.executable", kind="xla.executable", load=load_xla, requires=versions.REQUIRES)]


@hookimpl
def buildsys_tool_versions():
    return versions.tool_versions()
