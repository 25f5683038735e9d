"""The PyTorch backend: torch models as a source, torch.export, AOTInductor, and their runners.

Kinds: ``torch.module`` (the source, not stored) -> ``torch.exported`` (.pt2 ExportedProgram)
-> ``torch.aoti`` (AOTInductor package, hardware-tagged). ``torch.reference`` computes the eager
outputs every artifact is validated against. torch is imported only inside stage functions.
"""

from __future__ import annotations

from buildsys import (HardwarePolicy, KindSpec, Requirement, RunnerSpec, SourceSpec, StageSpec,
                      hookimpl, model_files)

from . import exported
from .export import ExportOptions, run_export
from .lower import run_bf16, run_fp16
from .runtime import AotiOptions, load_aoti, load_exported, run_aoti, run_reference

__version__ = "0.1.0"

TORCH = Requirement("torch", ">=2.11", "pip install torch==2.13.0  (CPU build; see README)")


def _load(model, root):
    from .source import load_module

    return load_module(model, root)


@hookimpl
def buildsys_register_kinds():
    return [
        KindSpec("torch.module", 1, "an nn.Module built by the manifest's entrypoint", stored=False),
        KindSpec("torch.exported.file", 1, "an existing .pt2 ExportedProgram named by model.entrypoint "
                 "(framework: torch.exported)", stored=False),
        KindSpec("torch.exported", 2, "a torch.export ExportedProgram (.pt2)", aliases=("exported", "pt2")),
        KindSpec("torch.aoti", 4, "an AOTInductor package (.pt2), compiled for one device", aliases=("aoti",)),
    ]


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="torch", kind="torch.module", fingerprint=model_files, load=_load,
                       requires=(TORCH,)),
            SourceSpec(framework="torch.exported", kind="torch.exported.file", fingerprint=exported.fingerprint,
                       load=exported.load, signature=exported.signature, describe=exported.describe,
                       requires=(TORCH,))]


@hookimpl
def buildsys_register_stages():
    return [
        # version 2: a source's companion programs (a seq2seq encoder) are exported beside the primary;
        # 3: its output carries the source's companion files (a generation model's tokenizer/)
        StageSpec("torch.export", consumes=("torch.module",), produces="torch.exported", run=run_export,
                  options=ExportOptions, requires=(TORCH,), primary="model.pt2", version=3,
                  description="torch.export with the manifest's dynamic dims; save/load round trip checked"),
        StageSpec("torch.reference", consumes=("torch.module",), produces="reference", run=run_reference,
                  requires=(TORCH,), deterministic=False,
                  description="eager outputs on the samples (what validation compares with)"),
        StageSpec("torch.fp16", consumes=("torch.exported",), produces="torch.exported", precision="fp16",
                  run=run_fp16, requires=(TORCH,), primary="model.pt2", version=2,  # 2: out-of-range scalars clamped
                  description="the program's weights and compute in fp16 (float32 inputs/outputs cast at the edges)"),
        StageSpec("torch.bf16", consumes=("torch.exported",), produces="torch.exported", precision="bf16",
                  run=run_bf16, requires=(TORCH,), primary="model.pt2", version=2,  # 2: out-of-range scalars clamped
                  description="the program's weights and compute in bf16 (float32 inputs/outputs cast at the edges)"),
        # version 2: the wrapper links the shared libstdc++ by name (see runtime._SHARED_LIBSTDCXX);
        # 3: CUDA packages record cuda_graphs and the per-bucket engine table (dispatch.py)
        StageSpec("torch.aoti", consumes=("torch.exported",), produces="torch.aoti", run=run_aoti, version=3,
                  options=AotiOptions, hardware=HardwarePolicy.TARGET, deterministic=False,
                  requires=(TORCH,), primary="model.pt2", isolated=True,  # loads a .so it cannot unload
                  description="AOTInductor package; CPU needs g++, CUDA needs the GPU"),
        StageSpec("torch.import", consumes=("torch.exported.file",), produces="torch.exported",
                  run=exported.run_import, requires=(TORCH,), primary="model.pt2",
                  description="an existing .pt2 (framework: torch.exported), loaded after model.imports"),
        StageSpec("torch.exported.reference", consumes=("torch.exported.file",), produces="reference",
                  run=exported.run_reference, requires=(TORCH,), deterministic=False,
                  description="the given program's outputs on the samples"),
    ]


@hookimpl
def buildsys_register_runners():
    return [RunnerSpec(name="torch.export", kind="torch.exported", load=load_exported, requires=(TORCH,)),
            RunnerSpec(name="torch.aoti", kind="torch.aoti", load=load_aoti, requires=(TORCH,))]


@hookimpl
def buildsys_bench_references(model, root, device, precisions):
    from .bench import references

    return references(model, root, device, precisions)


@hookimpl
def buildsys_worker_reset():
    """Between two jobs in one pooled worker: torch's global state as a fresh process has it."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return
    if "torch._dynamo" in sys.modules:  # compiled-graph caches and guards of the last job's model
        torch._dynamo.reset()
    torch.seed()  # a fresh process starts from a random seed too; models that need one set it
    torch.set_default_dtype(torch.float32)
    torch.set_grad_enabled(True)
    orphans = _user_operators(sys.modules)
    if orphans:  # registrations cannot be taken back: the next job would find them without importing
        raise RuntimeError(f"the last job registered custom operators from the model's code ({', '.join(orphans[:5])}); "
                           "retiring this worker so the next job starts without them")


def _user_operators(modules) -> list[str]:
    """Custom operators (torch.library.custom_op) whose defining module is gone from
    ``sys.modules``: the user's model code, which the core has just unloaded."""
    try:
        from torch._library.custom_ops import OPDEFS  # private: best effort
    except ImportError:
        return []
    return sorted(name for name, op in list(OPDEFS.items())
                  if getattr(getattr(op, "_init_fn", None), "__module__", None) not in (None, *modules))


@hookimpl
def buildsys_tool_versions():
    version = TORCH.installed_version()
    return {"torch": version} if version else {}


@hookimpl
def buildsys_add_commands(cli):
    from .doctor import doctor

    cli.add_command(doctor)
