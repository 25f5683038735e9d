"""Per shape bucket, the faster of two CUDA-graph engines for an AOTInductor CUDA package.

Both engines replay one captured CUDA graph per input signature (``cudagraph.GraphedProgram``),
so neither pays Python or launch overhead; they differ in the kernels inside the graph:

- ``inductor``: the package's own kernels (Triton fusions, extern GEMMs/convolutions), loaded
  with ``run_single_threaded`` so its container takes no locks or events during capture;
- ``eager``: the exported program's ATen kernels after ``cudagraph``'s rewrites (BatchNorm
  folded, cuDNN conv+bias+add+ReLU fused, channels_last).

Neither wins everywhere: measured on the H100/H200, the eager graph of ResNet-50 at batch 1 beats
Inductor's, while BERT at batch 8 and 32 replays ~250 unfused eager kernels against Inductor's
~130. So the ``torch.aoti`` stage times both on the build GPU at each bucket of the manifest's dims
(every dim at its min, at its opt, at its max), keeps the faster per bucket and records the table
in artifact.json (``meta.dispatch``); the package then carries the exported program too
(``program.pt2``) when any bucket chose it. The runner sends a call to the engine its nearest
bucket chose (nearest by input elements, on a log scale). The choice depends on timings, so
this stage is nondeterministic, as AOTInductor already is.
"""

from __future__ import annotations

import math

EAGER_PROGRAM = "program.pt2"  # the exported program, kept in the package's folder when a bucket chose it
REPEATS = 25  # timed replays per (bucket, engine), after warm-up; the median decides


def bucket_sizes(model) -> list[dict[str, int]]:
    """Every dim at its min, at its opt, at its max (deduplicated, in that order)."""
    from .inputs import dim_bounds

    bounds, sizes = dim_bounds(model), []
    for pick in (0, 1, 2):
        chosen = {name: b[pick] for name, b in bounds.items()}
        if chosen not in sizes:
            sizes.append(chosen)
    return sizes


def bucket_arrays(model, sizes: dict[str, int], seed: int = 0) -> list:
    """The manifest's inputs at ``sizes``, as numpy arrays (seeded: the same every build)."""
    import torch

    from .inputs import make_tensor, shape_for

    generator = torch.Generator().manual_seed(seed)
    return [make_tensor(spec, shape_for(spec, sizes), generator).numpy() for spec in model.inputs]


def elements(arrays) -> int:
    return sum(int(a.size) for a in arrays)


def median_ms(call, arrays, repeats: int = REPEATS) -> float:
    """Median of ``repeats`` calls, each timed with CUDA events (``bench.CudaMeter``, as
    ``buildsys bench`` times them), after three warm-up calls (the first captures the graph)."""
    from .bench import CudaMeter

    meter = CudaMeter()
    for _ in range(3):
        call(arrays)
    times = sorted(meter.time(call, arrays) for _ in range(repeats))
    return times[len(times) // 2] * 1e3


def choose(model, engines: dict, progress=None) -> list[dict]:
    """Time every engine at every bucket; one row per bucket: sizes, elements, the winner and
    each engine's median ms. Interleaved per bucket, so drift hits both engines alike."""
    table = []
    buckets = bucket_sizes(model)
    for i, sizes in enumerate(buckets):
        if progress:
            progress(i, len(buckets), f"timing the engines at {sizes}")
        arrays = bucket_arrays(model, sizes)
        ms = {name: round(median_ms(call, arrays), 4) for name, call in engines.items()}
        table.append({"sizes": sizes, "elements": elements(arrays), "engine": min(ms, key=ms.get), "ms": ms})
    return table


def nearest(table: list[dict], count: int) -> dict:
    """The row whose input size is nearest ``count`` elements (log scale: batch 16 sits between
    8 and 32, not beside 32)."""
    return min(table, key=lambda row: abs(math.log(max(row["elements"], 1)) - math.log(max(count, 1))))


class Dispatch:
    """numpy in / numpy out: each call goes to the engine its nearest bucket chose."""

    def __init__(self, table: list[dict], engines: dict):
        self.table = table
        self.engines = engines

    def engine_for(self, arrays) -> str:
        return nearest(self.table, elements(arrays))["engine"]

    def __call__(self, arrays):
        return self.engines[self.engine_for(arrays)](arrays)
