"""Bench references for torch models (eager, torch.compile) and a CUDA meter.

``buildsys bench`` times every artifact against these. All take and return numpy arrays, like
the runners, so each variant pays the same host<->device copies. On a GPU the meter times a
call with CUDA events, reads ``torch.cuda.max_memory_allocated`` and counts the kernels one
forward launches with the profiler (did fusion happen?).
"""

from __future__ import annotations

import time

from .flat import flatten
from .tensors import to_numpy, to_tensors


def numpy_call(module, device: str):
    """``module`` as a numpy-in / numpy-out call under no_grad, converting like the runners."""
    import torch

    def run(arrays):
        with torch.no_grad():
            return [to_numpy(t) for t in flatten(module(*to_tensors(arrays, device)))]

    return run


def references(model, root, device: str) -> dict | None:
    """eager; torch.compile (default mode); on CUDA also torch.compile(mode="reduce-overhead")."""
    if model.framework != "torch":
        return None
    import torch

    from .source import load_module

    module = load_module(model, root).to(device)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # every variant in this process gets the same setting
    variants = {"eager": numpy_call(module, device),
                "torch.compile": numpy_call(torch.compile(module), device)}
    notes = []
    if device == "cuda":
        variants["torch.compile[reduce-overhead]"] = numpy_call(torch.compile(module, mode="reduce-overhead"), device)
    else:
        notes.append("torch.compile reduce-overhead (CUDA graphs) is a GPU reference: not run on CPU")
    return {"variants": variants, "meter": CudaMeter() if device == "cuda" else None, "notes": notes}


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
