"""The per-bucket engine choice of AOTInductor CUDA packages (``buildsys_torch.dispatch``): which
bucket a call falls into and which engine then runs it. The timing itself needs a GPU (it runs
in the ``torch.aoti`` stage on the GPU machine, bench/results/aoti_dispatch_h200.md)."""

import numpy as np
import pytest

from buildsys_torch.dispatch import Dispatch, bucket_arrays, bucket_sizes, nearest

from buildsys import manifest

MANIFEST = """
schema: 1
name: m
version: 1.0.0
model:
  framework: torch
  entrypoint: m.py:build
  inputs:
    - {name: ids, dtype: int64, shape: [batch, seq], range: [0, 7]}
    - {name: mask, dtype: float32, shape: [batch, seq]}
  dims:
    batch: {min: 1, opt: 8, max: 32}
    seq: {min: 16, opt: 128, max: 128}
targets: {aoti: {format: aoti, hardware: cuda-sm90}}
"""

TABLE = [{"sizes": {"batch": 1}, "elements": 256, "engine": "eager", "ms": {"inductor": 0.6, "eager": 0.5}},
         {"sizes": {"batch": 8}, "elements": 2048, "engine": "inductor", "ms": {"inductor": 1.0, "eager": 1.7}},
         {"sizes": {"batch": 32}, "elements": 8192, "engine": "inductor", "ms": {"inductor": 2.9, "eager": 4.2}}]


def test_buckets_are_every_dim_at_its_min_opt_and_max(tmp_path):
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / "m.py").write_text("")
    model = manifest.load(tmp_path / "m.yaml").model
    assert bucket_sizes(model) == [{"batch": 1, "seq": 16}, {"batch": 8, "seq": 128}, {"batch": 32, "seq": 128}]
    ids, mask = bucket_arrays(model, {"batch": 8, "seq": 128})
    assert ids.shape == mask.shape == (8, 128) and ids.dtype == np.int64 and mask.dtype == np.float32
    assert ids.min() >= 0 and ids.max() < 7
    again = bucket_arrays(model, {"batch": 8, "seq": 128})
    assert np.array_equal(ids, again[0]) and np.array_equal(mask, again[1])  # seeded: every build times the same


@pytest.mark.parametrize("count, engine", [(1, "eager"), (256, "eager"), (600, "eager"), (900, "inductor"),
                                           (2048, "inductor"), (5000, "inductor"), (10**6, "inductor")])
def test_a_call_takes_the_choice_of_the_bucket_nearest_on_a_log_scale(count, engine):
    assert nearest(TABLE, count)["engine"] == engine  # 600 is nearer 256 than 2048 in log terms; 900 is not


def test_dispatch_sends_each_call_to_its_buckets_engine():
    calls = []
    engines = {name: (lambda arrays, name=name: calls.append((name, arrays[0].shape)) or [name])
               for name in ("inductor", "eager")}
    run = Dispatch(TABLE, engines)
    assert run([np.zeros((1, 200))]) == ["eager"] and run([np.zeros((30, 256))]) == ["inductor"]
    assert calls == [("eager", (1, 200)), ("inductor", (30, 256))]
