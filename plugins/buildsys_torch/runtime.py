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


def run_aoti(ctx, inputs, options: AotiOptions):
    import torch

    device = "cuda" if ctx.hardware.startswith("cuda") else "cpu"
    if device == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
        raise BackendUnavailable("AOTInductor for CPU compiles C++ and no C++ compiler was found",
                                 hint="apt-get install g++")
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"AOTInductor for {ctx.hardware} needs a CUDA device; torch sees none")
    if device == "cuda" or not options.dynamic:
        program = _reexport(ctx, device, options.dynamic)
    else:
        import_modules(ctx.model.imports, ctx.root)  # they register the program's custom operators
        program = torch.export.load(str(inputs[0].primary))
    ctx.progress(0, 1, f"compiling for {ctx.hardware}")
    torch._inductor.aoti_compile_and_package(
        program, package_path=str(ctx.out_dir / AOTI_PACKAGE),
        inductor_configs={"max_autotune": options.mode == "max-autotune"})
    meta = inputs[0].meta
    return {"primary": AOTI_PACKAGE, "device": device, "input_names": meta.get("input_names"),
            "output_names": meta.get("output_names"), "dynamic": options.dynamic}


def _reexport(ctx, device: str, dynamic: bool):
    """Export the source model again, on ``device`` (AOTI compiles for the device the graph was
    traced on; moving a CPU ExportedProgram to CUDA keeps its CPU device assertions)."""
    import torch

    from .flat import flat_module

    from .export import export_context

    model = ctx.load_model()
    module = flat_module(model, [s.name for s in ctx.model.inputs]).to(device)
    args = tuple(t.to(device) for t in model_inputs.example_inputs(ctx.model))
    shapes = model_inputs.dynamic_shapes(ctx.model) if dynamic else None
    with torch.no_grad(), export_context(model):
        return torch.export.export(module, args, dynamic_shapes=shapes)


# -- runners -------------------------------------------------------------------------------------




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
    from .exported import load_program

    module = load_program(artifact.primary, artifact.primary.name).module()
    if device == "cuda":
        from .cudagraph import retarget

        retarget(module, device)
    module = module.to(device)
    if mode == "compile":
        module = torch.compile(module, mode="reduce-overhead")

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(module(*to_tensors(arrays, device)))]

    return run


def load_aoti(artifact, device: str):
    import torch

    compiled = torch._inductor.aoti_load_package(str(artifact.primary))

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(compiled(*to_tensors(arrays, device)))]

    return run
