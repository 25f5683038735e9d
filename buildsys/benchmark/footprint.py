"""One variant alone in a fresh process: the host memory it adds, and its cold start.

Why a process per variant: ``buildsys bench`` times every variant in one process (same inputs,
interleaved), so a peak RSS read there holds every variant loaded before it — variant N reads
as the footprint of N variants. Measured alone, the peak over the process's baseline is what
deploying that variant costs: its runtime (imported while loading), its weights, its
activations at each batch. Framework-free: ``load`` does the importing.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

from .measure import current_rss, peak_rss, reset_peak_rss, timed
from .protocol import Footprint

#: Calls per batch after the first: enough for allocator caches and lazy buffers to settle.
CALLS = 3


def measure(name: str, load: Callable[[], Callable], inputs: dict[int, list],
            log: Callable[[str], Any] = lambda line: None, calls: int = CALLS) -> Footprint:
    """Load ``name`` with ``load()`` (returns its numpy-in/numpy-out call), then run its first
    call and ``calls`` more at each batch of ``inputs`` (ascending), reading the peak RSS over
    the baseline taken just before loading."""
    gc.collect()
    resets = reset_peak_rss()
    baseline = current_rss() or 0
    started = time.perf_counter()
    run = load()
    load_s = time.perf_counter() - started
    load_peak = _over(peak_rss(), baseline)
    log(f"{name}: loaded in {load_s:.2f} s (runtime import included), peak {_mb(load_peak)} over the baseline")
    first, peaks = {}, {}
    for batch in sorted(inputs):
        reset_peak_rss()
        first[batch], _ = timed(run, inputs[batch])
        for _ in range(calls):
            run(inputs[batch])
        peaks[batch] = _over(peak_rss(), baseline)
        log(f"{name}: batch {batch}: first call {first[batch]:.2f} s, peak {_mb(peaks[batch])} over the baseline")
    source = "VmHWM, reset before each phase" if resets else "ru_maxrss (cannot be reset: cumulative over the phases)"
    return Footprint(name, baseline, load_s, load_peak, first, peaks, calls, source)


def _over(peak: int | None, baseline: int) -> int | None:
    return None if peak is None else max(0, peak - baseline)


def _mb(value: int | None) -> str:
    return "?" if value is None else f"{value / 1e6:.1f} MB"
