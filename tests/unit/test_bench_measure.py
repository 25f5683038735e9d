"""The framework-free bench machinery on fake variants: counts, ratios, 'fast but wrong', picks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from buildsys.benchmark import measure
from buildsys.benchmark.session import why_not_runnable
from buildsys.hardware import Host
from buildsys.specs import Requirement, RunnerSpec


class FakeMeter:
    """Deterministic 'time': each variant reports its own cost, so ratios are exact."""

    name, memory = "fake", "none"

    def __init__(self, costs):
        self.costs = costs

    def time(self, call, arrays, device="cpu"):
        call(arrays)
        return self.costs[call.__name__]

    def peak_memory(self, call, arrays, device="cpu"):
        return 1234

    def kernels(self, call, arrays, device="cpu"):
        return 7 if device == "cuda" else None


def named(name, fn):
    fn.__name__ = name
    return fn


def variants():
    eager = measure.Variant("eager", "reference", named("eager", lambda a: [a[0] * 2]))
    fast = measure.Variant("fast", "onnx", named("fast", lambda a: [a[0] * 2]), artifact=True)
    wrong = measure.Variant("wrong", "onnx", named("wrong", lambda a: [a[0] * 3]), artifact=True)
    faster_cuda = measure.Variant("faster", "torch.exported", named("faster", lambda a: [a[0] * 2 + 1e-4]),
                                  artifact=True, device="cuda")
    return [eager, fast, wrong, faster_cuda]


def test_summary_rows_ratios_tolerance_and_pick():
    vs = variants()
    meter = FakeMeter({"eager": 0.004, "fast": 0.002, "wrong": 0.0005, "faster": 0.001})
    inputs = {1: [np.ones((1, 4), np.float32)], 8: [np.ones((8, 4), np.float32)]}
    timing = measure.Timing(rounds=3, burst=4, settle=1, warmup=2)
    diffs = measure.warm_up(vs, inputs, timing.warmup, meter)
    times = measure.interleave(vs, inputs, measure.auto_rounds(vs, timing), timing, meter)
    assert all(len(samples) == 3 * (4 - 1) for samples in times.values())
    rows = measure.summarize(vs, times, diffs, [1, 8], {v.name: (1e-3, 0.0) for v in vs})
    by = {(r["variant"], r["batch"]): r for r in rows}
    assert by[("eager", 1)]["speedup"] == pytest.approx(1.0)
    assert by[("fast", 8)]["speedup"] == pytest.approx(2.0)
    assert by[("fast", 8)]["items_per_s"] == pytest.approx(8 / 0.002)
    assert not by[("wrong", 1)]["within_tolerance"] and by[("wrong", 1)]["max_abs_diff"] == pytest.approx(1.0)
    assert by[("faster", 1)]["within_tolerance"] and by[("faster", 1)]["kernels"] == 7
    assert by[("eager", 1)]["kernels"] is None and by[("eager", 1)]["peak_memory_bytes"] == 1234
    best = measure.best_artifact(rows)  # 'wrong' is fastest but disagrees with eager
    assert best["variant"] == "faster" and best["speedup"] == pytest.approx(4.0)


def test_relative_tolerance_scales_with_the_outputs():
    vs = variants()[:2]
    vs[1].run = named("fast", lambda a: [a[0] * 2 * 1.001])
    inputs = {1: [np.full((1, 4), 1000, np.float32)]}
    diffs = measure.warm_up(vs, inputs, 1, FakeMeter({"eager": 1.0, "fast": 1.0}))
    times = {(v.name, 1): [1.0] for v in vs}
    strict = measure.summarize(vs, times, diffs, [1], {"fast": (1e-3, 0.0)})
    relative = measure.summarize(vs, times, diffs, [1], {"fast": (0.0, 1e-2)})
    assert not strict[1]["within_tolerance"] and relative[1]["within_tolerance"]


def test_inputs_follow_the_manifest_dtypes_dims_and_ranges():
    dim = SimpleNamespace(ranges=lambda: [(1, 64, 128)])
    model = SimpleNamespace(dims={"batch": SimpleNamespace(ranges=lambda: [(1, 8, 32)]), "seq": dim},
                            inputs=[SimpleNamespace(name="ids", dtype="int64", shape=["batch", "seq"], range=(5, 9)),
                                    SimpleNamespace(name="x", dtype="float16", shape=["batch", 3], range=None)])
    ids, x = measure.make_inputs(model, batch=2)
    assert ids.shape == (2, 64) and ids.dtype == np.int64 and ids.min() >= 5 and ids.max() < 9
    assert x.shape == (2, 3) and x.dtype == np.float16
    again = measure.make_inputs(model, batch=2)
    assert np.array_equal(again[0], ids), "the same inputs for every variant and every run"


def test_text_outputs_compare_by_equality():
    assert measure.max_abs_diff(["abc"], ["abc"]) == 0.0
    assert measure.max_abs_diff(["abc"], ["abd"]) == float("inf")


def _project(runners):
    return SimpleNamespace(catalog=SimpleNamespace(runners=runners), host=Host("x86_64", "avx2", "h"))


def test_reasons_an_artifact_cannot_be_timed_here():
    runner = RunnerSpec(name="r", kind="k", load=lambda a, d: None)
    record = {"kind": "k", "hardware": "any", "precision": "fp32"}
    assert why_not_runnable(_project({"k": runner}), record, "cpu") == ""
    assert "no runner for kind other" in why_not_runnable(_project({}), dict(record, kind="other"), "cpu")
    gpu = why_not_runnable(_project({"k": runner}), dict(record, hardware="cuda-sm86.sm89"), "cpu")
    assert "built for cuda-sm86.sm89" in gpu and "cpu-x86_64-avx2" in gpu
    missing = RunnerSpec(name="r", kind="k", load=lambda a, d: None,
                         requires=(Requirement("surely-not-installed-xyz", "", "pip install xyz"),))
    assert "needs surely-not-installed-xyz" in why_not_runnable(_project({"k": missing}), record, "cpu")
    fp32_only = RunnerSpec(name="r", kind="k", load=lambda a, d: None, precisions=("fp32",))
    assert "not int8" in why_not_runnable(_project({"k": fp32_only}), dict(record, precision="int8"), "cpu")
