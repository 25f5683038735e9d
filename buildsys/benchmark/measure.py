"""Timing machinery: warm-up, interleaved shuffled bursts, medians and p95, speedup vs eager.

Framework-free (numpy only). A *variant* is any callable taking and returning lists of numpy
arrays: a reference from ``buildsys_bench_references`` (eager, torch.compile) or a built
artifact loaded through its ``RunnerSpec``. A *meter* times one call and reads peak memory;
``CpuMeter`` (wall clock, host peak RSS) is the default, a plugin supplies a device meter
(CUDA events, device memory, kernel counts) through the same hook.
"""

from __future__ import annotations

import gc
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SEED = 0

_NUMPY_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "float32", "float64": "float64",
                 "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8",
                 "bool": "bool"}


@dataclass
class Variant:
    """One way of running the model: numpy arrays in, numpy arrays out."""

    name: str
    kind: str
    run: Callable[[list], list]
    artifact: bool = False
    device: str = "cpu"
    precision: str = ""
    load_s: float = 0.0
    first_call_s: dict[int, float] = field(default_factory=dict)
    warm_s: dict[int, float] = field(default_factory=dict)  # median of the warm-up calls
    peak_memory: dict[int, int | None] = field(default_factory=dict)
    kernels: dict[int, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """How the timed phase runs (see ``interleave`` for why bursts)."""

    rounds: int = 0           # 0: auto, from ``seconds``
    seconds: float = 10.0
    burst: int = 10
    settle: int = 3
    warmup: int = 10
    wait_quiet: float = 0.0


# -- inputs --------------------------------------------------------------------------------------


def dim_sizes(model, batch: int) -> dict[str, int]:
    """Every manifest dim at its opt (the last bucket's min for bucketed dims), batch at ``batch``."""
    sizes = {}
    for name, dim in model.dims.items():
        ranges = dim.ranges()
        sizes[name] = ranges[0][1] if len(ranges) == 1 else ranges[-1][0]
    sizes["batch"] = batch
    return sizes


def make_inputs(model, batch: int, seed: int = SEED) -> list:
    """The manifest's inputs at ``dim_sizes``; dtype as declared (bfloat16 as float32), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = dim_sizes(model, batch)
    arrays = []
    for spec in model.inputs:
        shape = [sizes[d] if isinstance(d, str) else d for d in spec.shape]
        dtype = np.dtype(_NUMPY_DTYPES[spec.dtype])
        if dtype.kind == "f":
            low, high = spec.range if spec.range is not None else (None, None)
            values = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
        elif dtype.kind == "b":
            values = rng.integers(0, 2, shape)
        else:
            low, high = (int(spec.range[0]), int(spec.range[1])) if spec.range is not None else (0, 100)
            values = rng.integers(low, max(high, low + 1), shape)
        arrays.append(np.ascontiguousarray(values.astype(dtype)))
    return arrays


def describe_inputs(model, inputs: dict[int, list]) -> dict:
    return {str(b): [{"name": s.name, "dtype": str(a.dtype), "shape": list(a.shape)}
                     for s, a in zip(model.inputs, arrays)] for b, arrays in inputs.items()}


# -- meters --------------------------------------------------------------------------------------


class CpuMeter:
    """Wall clock around a (synchronous) call; host peak RSS of this process (Linux VmHWM)."""

    name = "wall clock (time.perf_counter)"
    memory = "host peak RSS"

    def time(self, call: Callable, arrays: list, device: str = "cpu") -> float:
        started = time.perf_counter()
        call(arrays)
        return time.perf_counter() - started

    def peak_memory(self, call: Callable, arrays: list, device: str = "cpu") -> int | None:
        reset_peak_rss()
        call(arrays)
        return peak_rss()

    def kernels(self, call: Callable, arrays: list, device: str = "cpu") -> int | None:
        return None


def reset_peak_rss() -> bool:
    """Make the peak RSS restart from the current RSS; False where it cannot (then the peak
    is the process's since it started)."""
    try:  # writing 5 resets VmHWM to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def current_rss() -> int | None:
    """This process's resident set now (Linux VmRSS), in bytes."""
    return _status_kb("VmRSS:")


def peak_rss() -> int | None:
    """This process's peak resident set since it started or the last ``reset_peak_rss``."""
    peak = _status_kb("VmHWM:")
    if peak is not None:
        return peak
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (ImportError, OSError):
        return None


def _status_kb(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# -- measurement ---------------------------------------------------------------------------------


def timed(run: Callable, arrays: list) -> tuple[float, list]:
    started = time.perf_counter()
    outputs = run(arrays)
    return time.perf_counter() - started, outputs


def max_abs_diff(outputs: list, reference: list) -> float:
    """Largest |variant - reference| over all outputs (inf when the outputs do not line up)."""
    import numpy as np

    if len(outputs) != len(reference) or any(np.shape(a) != np.shape(b) for a, b in zip(outputs, reference)):
        return float("inf")
    if not all(_numeric(a) and _numeric(b) for a, b in zip(outputs, reference)):  # e.g. text: equal or not
        return 0.0 if all(np.array_equal(a, b) for a, b in zip(outputs, reference)) else float("inf")
    return max((float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
                for a, b in zip(outputs, reference)), default=0.0)


def warm_up(variants: list[Variant], inputs: dict[int, list], calls: int, meter,
            log: Callable[[str], Any] = lambda line: None) -> dict:
    """First call per (variant, batch) timed apart (compile), then ``calls`` warm-up calls (their
    median sizes the timed phase), peak memory and kernels per forward. ``log`` gets a line
    before and after each (variant, batch): a first call can take minutes (torch.compile).

    Returns ``(max abs diff, max |reference|)`` per (variant, batch): the difference from the
    first variant's (eager's) outputs, and their scale.
    """
    import numpy as np

    reference, diffs = {}, {}
    steps = [(v, b) for v in variants for b in inputs]  # eager is first: its outputs are the reference
    for step, (variant, batch) in enumerate(steps, 1):
        arrays, where = inputs[batch], f"warm-up {step}/{len(steps)}: {variant.name} at batch {batch}"
        log(f"{where}: first call ...")
        variant.first_call_s[batch], outputs = timed(variant.run, arrays)
        reference.setdefault(batch, outputs)
        diffs[(variant.name, batch)] = (max_abs_diff(outputs, reference[batch]), _scale(reference[batch]))
        variant.warm_s[batch] = float(np.median([meter.time(variant.run, arrays, variant.device)
                                                 for _ in range(max(1, calls))]))
        variant.peak_memory[batch] = meter.peak_memory(variant.run, arrays, variant.device)
        variant.kernels[batch] = meter.kernels(variant.run, arrays, variant.device)
        log(f"{where}: first call {variant.first_call_s[batch]:.2f} s, then {max(1, calls)} calls "
            f"at {variant.warm_s[batch] * 1e3:.3f} ms")
    return diffs


def _numeric(value) -> bool:
    import numpy as np

    return np.asarray(value).dtype.kind in "biuf"


def _scale(arrays: list) -> float:
    import numpy as np

    if not all(_numeric(a) for a in arrays):
        return 0.0
    return max((float(np.max(np.abs(np.asarray(a, np.float64)), initial=0.0)) for a in arrays), default=0.0)


def auto_rounds(variants: list[Variant], timing: Timing) -> int:
    """Rounds that make the timed phase last about ``timing.seconds``, from the warm-up medians."""
    if timing.rounds:
        return timing.rounds
    round_s = timing.burst * sum(s for v in variants for s in v.warm_s.values())
    return int(min(5000, max(5, timing.seconds / max(round_s, 1e-6))))


def interleave(variants: list[Variant], inputs: dict[int, list], rounds: int, timing: Timing,
               meter, log: Callable[[str], Any] = lambda line: None) -> dict[tuple[str, int], list[float]]:
    """Each round runs every (variant, batch) once, as a burst of ``burst`` back-to-back calls,
    in a seeded shuffle; the first ``settle`` calls of a burst are not counted. GC off meanwhile.

    Why bursts: on a small CPU the previous variant's thread pool is still spinning when the
    next one starts (ONNX Runtime's workers after Run; torch's OpenMP workers after a parallel
    region), so a torch variant run right after ORT is slowed for 1-2 calls and ORT run right
    after torch for up to ~10-20 calls (measured on a 2-vCPU host). That is interference
    between runtimes in one process, not a property of either; counting only the end of each
    burst measures each variant in its steady state. Shuffled rounds spread machine drift
    over every variant alike. ``log`` gets a line at each tenth of the rounds (and at least
    every ``PROGRESS_EVERY_S``), between bursts.
    """
    rng = random.Random(SEED)
    jobs = [(v, b) for v in variants for b in inputs]
    times: dict[tuple[str, int], list[float]] = {(v.name, b): [] for v, b in jobs}
    progress = RoundProgress(rounds, len(jobs), log)
    gc.collect()
    gc.disable()
    try:
        for done in range(1, rounds + 1):
            rng.shuffle(jobs)
            for variant, batch in jobs:
                calls = [meter.time(variant.run, inputs[batch], variant.device) for _ in range(timing.burst)]
                times[(variant.name, batch)] += calls[timing.settle:]
            progress.round_done(done)
    finally:
        gc.enable()
    return times


PROGRESS_EVERY_S = 30.0


class RoundProgress:
    """Says how far the timed phase is: at each tenth of the rounds, or after a quiet spell."""

    def __init__(self, rounds: int, bursts: int, log: Callable[[str], Any]):
        self.rounds, self.bursts, self.log = rounds, bursts, log
        self.marks = {max(1, round(rounds * k / 10)) for k in range(1, 11)}
        self.started = self.last = time.perf_counter()

    def round_done(self, done: int) -> None:
        now = time.perf_counter()
        if done not in self.marks and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        left = (now - self.started) / done * (self.rounds - done)
        self.log(f"timing: round {done}/{self.rounds} ({done / self.rounds:.0%}) of {self.bursts} bursts each, "
                 f"about {left:.0f} s left")


def summarize(variants: list[Variant], times: dict, diffs: dict, batches: list[int],
              bounds: dict[str, tuple[float, float]], baseline: str = "eager") -> list[dict]:
    """One row per (batch, variant): latency stats, throughput, ratio vs ``baseline``, accuracy.

    A variant is 'within tolerance' when its largest difference from the baseline's outputs is
    at most ``atol + rtol * max|baseline output|`` with its ``bounds[name] = (atol, rtol)``.
    """
    import numpy as np

    rows = []
    for batch in batches:
        base = times.get((baseline, batch))
        base_median = float(np.median(base)) if base else None
        for v in variants:
            samples = np.asarray(times[(v.name, batch)]) * 1e3
            median = float(np.median(samples))
            diff, scale = diffs[(v.name, batch)]
            atol, rtol = bounds.get(v.name, (float("inf"), 0.0))
            rows.append({"batch": batch, "variant": v.name, "kind": v.kind, "artifact": v.artifact,
                         "device": v.device, "precision": v.precision, "n": len(samples),
                         "median_ms": median, "p95_ms": float(np.percentile(samples, 95)),
                         "items_per_s": batch / (median / 1e3),
                         "speedup": base_median * 1e3 / median if base_median else None,
                         "max_abs_diff": diff, "within_tolerance": diff <= atol + rtol * scale,
                         "peak_memory_bytes": v.peak_memory.get(batch), "kernels": v.kernels.get(batch),
                         "load_s": v.load_s, "first_call_s": v.first_call_s[batch]})
    return rows


def best_artifact(rows: list[dict], batch: int = 1) -> dict | None:
    """The fastest artifact at ``batch`` whose outputs agree with eager (None if none ran)."""
    candidates = [r for r in rows if r["batch"] == batch and r["artifact"] and r["within_tolerance"]
                  and r["speedup"] is not None]
    return max(candidates, key=lambda r: r["speedup"]) if candidates else None


# -- a quiet machine -----------------------------------------------------------------------------


def cpu_counters() -> tuple[float, float, float]:
    """(wall s, CPU s busy on the whole machine, CPU s used by this process) right now."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        fields = [0] * 8
    idle = fields[3] + fields[4]  # idle + iowait
    own = os.times()
    return time.perf_counter(), (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def others_share(before: tuple, after: tuple) -> float:
    """Share of all CPUs that other processes used between two ``cpu_counters()`` readings."""
    wall, busy, own = (b - a for a, b in zip(before, after))
    return max(0.0, (busy - own) / (max(wall, 1e-9) * (os.cpu_count() or 1)))


def wait_for_quiet(limit_s: float, threshold: float = 0.05) -> float:
    """Wait (up to ``limit_s``) for a second in which other processes use < ``threshold`` of
    the CPUs; return the last share seen. A shared small VM is otherwise unmeasurable."""
    if limit_s <= 0:
        return float("nan")
    deadline = time.perf_counter() + limit_s
    while True:
        before = cpu_counters()
        time.sleep(1.0)
        share = others_share(before, cpu_counters())
        if share < threshold or time.perf_counter() > deadline:
            return share


def time_variants(variants: list[Variant], inputs: dict[int, list], timing: Timing, meter,
                  log: Callable[[str], Any] = print) -> tuple[dict, dict]:
    """The interleaved timed phase, once the machine is quiet; how busy it was meanwhile."""
    rounds = auto_rounds(variants, timing)
    log(f"{len(variants)} variants, {rounds} rounds of one burst of {timing.burst} calls "
        f"({timing.settle} uncounted) per variant and batch")
    before_start = wait_for_quiet(timing.wait_quiet)
    before = cpu_counters()
    times = interleave(variants, inputs, rounds, timing, meter, log)
    others = others_share(before, cpu_counters())
    if others > 0.05:
        log(f"other processes used {others:.0%} of the CPUs while timing (NOISY: rerun on a quiet machine)")
    return times, {"rounds": rounds, "others_cpu_share": others, "others_cpu_share_before": before_start}
