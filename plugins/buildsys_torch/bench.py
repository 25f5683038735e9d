"""Bench references for torch models (eager, torch.compile in its modes) and a CUDA meter.

``buildsys bench`` times every artifact against these. All take and return numpy arrays, like
the runners, so each variant pays the same host<->device copies. On a GPU the meter times a
call with CUDA events, reads ``torch.cuda.max_memory_allocated`` and counts the kernels one
forward launches with the profiler (did fusion happen?).
"""

from __future__ import annotations

import time

from .flat import flatten
from .tensors import to_numpy, to_tensors


def numpy_call(module, device: str, dtype=None):
    """``module`` as a numpy-in / numpy-out call under no_grad, converting like the runners;
    with ``dtype``, float32 inputs are cast to it on the device first (as a lowered artifact's
    edge casts do)."""
    import torch

    def run(arrays):
        tensors = to_tensors(arrays, device)
        if dtype is not None:
            tensors = [t.to(dtype) if t.dtype == torch.float32 else t for t in tensors]
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(module(*tensors))]

    return run


LOWERED = {"fp16": "float16", "bf16": "bfloat16"}
CUDA_MODES = ("max-autotune", "reduce-overhead")  # both capture CUDA graphs; CPU gets the default mode only


def references(model, root, device: str, precisions: tuple[str, ...] = ()) -> dict | None:
    """eager and torch.compile (default mode; on CUDA also max-autotune and reduce-overhead), at
    the precisions of the timed artifacts: float32, and the module in fp16/bf16 (copied, float
    weights converted, float32 inputs cast on entry) for each lowered precision among them.
    When every timed artifact has the same lowered precision, the references compute only in it
    and keep the plain names (``eager`` is then the fp16 module: ratios compare like with like)."""
    if model.framework != "torch":
        return None
    import copy

    import torch

    from .source import load_module

    module = load_module(model, root).to(device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # every variant in this process gets the same setting
    # every mode, precision and batch size compiles the same forward again: past the default
    # limit (8) Dynamo would quietly run the rest eagerly and the table would lie
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    lowered = [p for p in dict.fromkeys(precisions) if p in LOWERED]
    only = lowered[0] if len(lowered) == 1 and set(precisions) == {lowered[0]} else None
    modules = {None: module} if only is None else {}
    for precision in lowered:
        modules[precision] = copy.deepcopy(module).to(getattr(torch, LOWERED[precision]))
    variants, notes, computes_in = {}, [], {}
    for precision, mod in modules.items():
        dtype = None if precision is None else getattr(torch, LOWERED[precision])
        tags = [] if precision is None or precision == only else [precision]
        first = len(variants)
        variants[_named("eager", tags)] = numpy_call(mod, device, dtype)
        # dynamic=False: each batch size gets its own specialised graph, as a service tuned for
        # speed compiles it (by default the second shape would recompile with a symbolic batch)
        variants[_named("torch.compile", tags)] = numpy_call(torch.compile(mod, dynamic=False), device, dtype)
        for mode in CUDA_MODES if device == "cuda" else ():
            variants[_named("torch.compile", tags + [mode])] = numpy_call(
                torch.compile(mod, mode=mode, dynamic=False), device, dtype)
        if precision is not None:
            computes_in.update((name, precision) for name in list(variants)[first:])
    if only:
        notes.append(f"references compute in {only}, the timed artifacts' precision (the module's float weights "
                     f"in {LOWERED[only]}, float32 inputs cast on entry)")
    if device != "cuda":
        notes.append("torch.compile max-autotune and reduce-overhead (CUDA graphs) are GPU references: not run on CPU")
    return {"variants": variants, "meter": CudaMeter() if device == "cuda" else None, "notes": notes,
            "precisions": computes_in}


def _named(base: str, tags: list[str]) -> str:
    """``torch.compile[fp16,reduce-overhead]``: the precision (when it is not every target's)
    and the mode, in brackets."""
    return base + (f"[{','.join(tags)}]" if tags else "")


class CudaMeter:
    """CUDA events around a call on the GPU; wall clock for variants that run on the CPU."""

    name = "CUDA events (GPU variants), wall clock (CPU variants)"
    memory = "torch.cuda.max_memory_allocated after a reset (GPU variants; CPU variants not measured)"

    def time(self, call, arrays, device: str = "cuda") -> float:
        import torch

        if device != "cuda":
            started = time.perf_counter()
            call(arrays)
            return time.perf_counter() - started
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call(arrays)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def peak_memory(self, call, arrays, device: str = "cuda") -> int | None:
        """Device memory high-water mark of one call (None for CPU variants: not measured)."""
        if device != "cuda":
            return None
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        call(arrays)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated())

    def kernels(self, call, arrays, device: str = "cuda") -> int | None:
        """Device kernels one call launches (memcpy/memset excluded), from the profiler."""
        if device != "cuda":
            return None
        import torch
        from torch.profiler import ProfilerActivity, profile

        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            call(arrays)
            torch.cuda.synchronize()
        names = [e.name for e in prof.events() if str(getattr(e, "device_type", "")).endswith("CUDA")]
        return sum(1 for n in names if not n.lower().startswith(("memcpy", "memset")))
