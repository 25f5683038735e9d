"""Reference outputs, the AOTInductor stage, and runners for torch artifacts."""

from __future__ import annotations

import shutil
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from buildsys import BackendUnavailable, import_modules, save_reference

from . import inputs as model_inputs
from .flat import flatten, output_names
from .source import call_eager
from .tensors import to_numpy, to_tensors

AOTI_PACKAGE = "model.pt2"


# -- reference -----------------------------------------------------------------------------------


def run_reference(ctx, inputs, options):
    """Eager outputs of the source model on the samples: what every artifact is compared with."""
    import torch

    module = ctx.load_model()
    samples = model_inputs.samples(ctx.model, ctx.root, module)
    names = [s.name for s in ctx.model.inputs]
    with torch.no_grad():
        raw = [call_eager(module, sample, ctx.model, ctx.root) for sample in samples]
    return save_reference(ctx.out_dir, [[to_numpy(t) for t in s] for s in samples],
                          [[to_numpy(t) for t in flatten(r)] for r in raw], names, output_names(raw[0]))


# -- AOTInductor ---------------------------------------------------------------------------------


class AotiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["default", "max-autotune"] = "default"
    dynamic: bool = Field(default=True, description="keep the manifest's dynamic dims (else specialise)")
    cuda_graphs: bool = Field(default=True, description="CUDA packages: the runner replays each input "
                              "signature as a captured CUDA graph (one launch per call)")
    dispatch: Literal["auto", "inductor"] = Field(
        default="auto", description="CUDA packages with cuda_graphs: 'auto' times the package's kernels against "
        "the exported program's eager kernels at each bucket of the dims and keeps the faster per bucket "
        "(the table goes into artifact.json); 'inductor' always runs the package")


def run_aoti(ctx, inputs, options: AotiOptions):
    import torch

    device = "cuda" if ctx.hardware.startswith("cuda") else "cpu"
    if device == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
        raise BackendUnavailable("AOTInductor for CPU compiles C++ and no C++ compiler was found",
                                 hint="apt-get install g++")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"AOTInductor for {ctx.hardware} needs a CUDA device; torch sees none")
    if inputs[0].precision != "fp32" and (device == "cuda" or not options.dynamic):
        program = _reexport_lowered(ctx, inputs[0], device, options.dynamic)  # keep torch.fp16's rewrite
    elif device == "cuda" or not options.dynamic:
        program = _reexport(ctx, device, options.dynamic)
    else:
        import_modules(ctx.model.imports, ctx.root)  # they register the program's custom operators
        program = torch.export.load(str(inputs[0].primary))
    ctx.progress(0, 1, f"compiling for {ctx.hardware}")
    configs = {"max_autotune": options.mode == "max-autotune", **_link_configs()}
    torch._inductor.aoti_compile_and_package(program, package_path=str(ctx.out_dir / AOTI_PACKAGE),
                                             inductor_configs=configs)
    meta = inputs[0].meta
    graphs = device == "cuda" and options.cuda_graphs
    return {"primary": AOTI_PACKAGE, "device": device, "input_names": meta.get("input_names"),
            "output_names": meta.get("output_names"), "dynamic": options.dynamic,
            "compiler": _compiler(), "links": configs.get("aot_inductor.custom_op_libs") or [],
            "mode": options.mode, "cuda_graphs": graphs,
            "dispatch": _dispatch_table(ctx, inputs[0]) if graphs and options.dispatch == "auto" else None,
            **({"loaded_as": meta["loaded_as"]} if meta.get("loaded_as") else {})}


def _dispatch_table(ctx, source) -> list[dict] | None:
    """Time the package against the source program's eager CUDA graph at each bucket
    (``dispatch``); keep the program beside the package when any bucket chose it."""
    from .cudagraph import GraphedProgram, load_graphed
    from .dispatch import EAGER_PROGRAM, choose

    import_modules(ctx.model.imports, ctx.root)
    engines = {"inductor": _graphed_package(ctx.out_dir / AOTI_PACKAGE, GraphedProgram),
               "eager": load_graphed(str(source.primary))}
    table = choose(ctx.model, engines, ctx.progress)
    if any(row["engine"] == "eager" for row in table):
        shutil.copyfile(source.primary, ctx.out_dir / EAGER_PROGRAM)
    return table


def _graphed_package(path, graphed):
    """The package loaded for CUDA-graph capture (no container locks or events while capturing)."""
    import torch

    _global_libstdcxx()
    return graphed(torch._inductor.aoti_load_package(str(path), run_single_threaded=True), channels_last=False)


# A package's wrapper.so must use the process's libstdc++, never a private copy: on the lent GPU
# machine the image's compiler (CXX=/opt/gcc/bin/g++) linked libstdc++ statically into it (no
# NEEDED libstdc++.so.6, ~300 locale symbols of its own), and loading any package died in
# std::regex's use_facet (parse_device_str). Naming the shared library by file links it
# dynamically whatever the compiler's default (scripts/device/aoti_link_probe.py, aoti_fix_probe.py).
_SHARED_LIBSTDCXX = ":libstdc++.so.6"


def _link_configs() -> dict:
    import sys

    if not sys.platform.startswith("linux") or "clang" in _compiler():
        return {}
    return {"aot_inductor.custom_op_libs": [_SHARED_LIBSTDCXX]}


def _compiler() -> str:
    """The C++ compiler Inductor runs (``CXX`` or g++ on PATH), for artifact.json."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return str(get_cpp_compiler())
    except Exception:  # an Inductor without that helper: say what we would guess
        import os

        return os.environ.get("CXX", "g++")


def _reexport(ctx, device: str, dynamic: bool):
    """Export the source model again, on ``device`` (AOTI compiles for the device the graph was
    traced on; moving a CPU ExportedProgram to CUDA keeps its CPU device assertions)."""
    from .export import export_context
    from .flat import flat_module
    from .lower import export_on

    model = ctx.load_model()
    module = flat_module(model, [s.name for s in ctx.model.inputs]).to(device)
    return export_on(ctx.model, module, device, dynamic, export_context(model))


def _reexport_lowered(ctx, source, device: str, dynamic: bool):
    """A lowered (fp16/bf16) program exported again on ``device``: its module, with the CPU
    device assertions and factories pointed at the device (``exported.module_on``)."""
    from .exported import module_on
    from .lower import export_on, positional, size_oblivious

    import_modules(ctx.model.imports, ctx.root)
    return export_on(ctx.model, positional(module_on(source.primary, device)), device, dynamic, size_oblivious())


# -- runners -------------------------------------------------------------------------------------


def _global_libstdcxx() -> None:
    """Put the process's libstdc++ in the global symbol scope before a package is loaded, so a
    wrapper.so that carries its own copy (built before the link fix, or by another tool) binds
    to the one libtorch uses: a second copy of the locale machinery crashed every load on the
    GPU machine, and ``LD_PRELOAD``-ing the system libstdc++ (which this does in-process) fixed it."""
    import ctypes
    import os
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL)
        except OSError:  # no shared libstdc++ (a static torch build): nothing to share
            pass


CUDA_MODES = ("graph", "compile", "eager")


def load_exported(artifact, device: str):
    """On CPU (validation): the program's module, eager. On CUDA: replayed under captured CUDA
    graphs (``cudagraph``), unless ``BUILDSYS_TORCH_CUDA_RUNNER`` says ``compile`` (JIT:
    torch.compile reduce-overhead of the loaded module) or ``eager``."""
    import os

    import torch

    mode = os.environ.get("BUILDSYS_TORCH_CUDA_RUNNER", "graph") if device == "cuda" else "eager"
    if mode not in CUDA_MODES:
        raise BackendUnavailable(f"BUILDSYS_TORCH_CUDA_RUNNER={mode!r} is not one of {', '.join(CUDA_MODES)}")
    if mode == "graph":
        from .cudagraph import load_graphed

        return load_graphed(str(artifact.primary))
    from .exported import module_on

    module = module_on(artifact.primary, device)
    if mode == "compile":
        module = torch.compile(module, mode="reduce-overhead")

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(module(*to_tensors(arrays, device)))]

    return run


def load_aoti(artifact, device: str):
    """A CUDA package built with ``cuda_graphs`` is replayed as captured CUDA graphs, through the
    per-bucket ``dispatch`` table when the stage recorded one; anything else runs the package."""
    import torch

    meta = artifact.meta or {}
    if device == "cuda" and meta.get("cuda_graphs"):
        from .cudagraph import GraphedProgram, load_graphed
        from .dispatch import EAGER_PROGRAM, Dispatch

        engines = {"inductor": _graphed_package(artifact.primary, GraphedProgram)}
        table = meta.get("dispatch")
        if not table:
            return engines["inductor"]
        if EAGER_PROGRAM in artifact.files:
            engines["eager"] = load_graphed(str(artifact.files[EAGER_PROGRAM]))
        return Dispatch(table, engines)
    _global_libstdcxx()
    compiled = torch._inductor.aoti_load_package(str(artifact.primary))

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(compiled(*to_tensors(arrays, device)))]

    return run
