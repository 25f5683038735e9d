"""Which idle worker of the warm pool a job goes to, and the pipe's records (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.jobs import JobFormatError, WorkerReply, WorkerRequest
from buildsys.pool import PooledWorker, PoolSettings, WorkerPool
from buildsys.records import Job


class _Alive:
    returncode = None

    def poll(self):
        return None


def idle_worker(*requires: str) -> PooledWorker:
    worker = object.__new__(PooledWorker)
    worker.proc, worker.requires, worker.jobs_done, worker.job, worker.reply = _Alive(), set(requires), 0, None, None
    return worker


def job(*requires: str) -> Job:
    return Job("n", Path("/nowhere"), Path("/nowhere/job.json"), requires=requires)


@pytest.fixture
def pool():
    return WorkerPool(PoolSettings(), capacity=4)


def test_the_worker_that_imported_most_of_what_a_stage_needs_takes_it(pool):
    jax, torch, torch_onnx = idle_worker("jax", "jaxlib"), idle_worker("torch"), idle_worker("torch", "onnx")
    pool.idle = [jax, torch, torch_onnx]
    assert pool._choose(job("onnx", "torch", "onnxscript")) is torch_onnx
    assert pool._choose(job("torch")) is torch  # as much overlap, fewer unrelated imports
    assert pool.idle == [jax]


def test_no_overlap_means_a_new_worker_but_a_stage_needing_nothing_takes_any(pool):
    jax = idle_worker("jax")
    pool.idle = [jax]
    assert pool._choose(job("torch")) is None  # torch and jax are not loaded into one process
    assert pool._choose(job()) is jax


def test_a_stage_that_declares_nothing_takes_the_worker_that_imported_the_most(pool):
    """Validation declares no requirements (it loads whatever runtime its artifact needs): the
    worker with torch, ONNX and ONNX Runtime loaded, not the one a lone onnx.ort job started with
    ONNX Runtime only — which then imported torch again for the exported program's validation
    (measured: a tiny MLP build 5.2 s -> 9 s once the launch order put that validation last)."""
    ort_only, rich = idle_worker("onnxruntime"), idle_worker("torch", "onnx", "onnxscript", "numpy")
    pool.idle = [rich, ort_only]
    assert pool._choose(job()) is rich


def test_names_match_in_any_spelling(pool):
    worker = idle_worker("onnxruntime", "tensorrt_rtx")
    pool.idle = [worker]
    assert pool._choose(job("TensorRT-RTX")) is worker


def test_a_worker_is_kept_until_its_job_count_or_memory_limit():
    pool = WorkerPool(PoolSettings(worker_jobs=2, worker_rss_mb=100))
    worker = idle_worker()
    worker.close = lambda: None
    for rss, kept in ((50.0, True), (50.0, False)):  # the second job reaches worker_jobs
        pool.busy.append(worker)
        worker.reply = WorkerReply("job.json", 1, rss)
        pool.done(worker)
        assert (worker in pool.idle) is kept
    fresh = idle_worker()
    fresh.close = lambda: None
    pool.busy.append(fresh)
    fresh.reply = WorkerReply("job.json", 2, 150.0)
    pool.done(fresh)
    assert fresh not in pool.idle and fresh in pool.retired
    unclean = idle_worker()
    unclean.close = lambda: None
    pool.busy.append(unclean)
    unclean.reply = WorkerReply("job.json", 3, 10.0, clean=False)
    pool.done(unclean)
    assert unclean in pool.retired


def test_pipe_records_round_trip_and_refuse_other_versions():
    assert WorkerRequest.from_line(WorkerRequest("/x/job.json").to_line().decode()) == WorkerRequest("/x/job.json")
    reply = WorkerReply("/x/job.json", 42, 512.5, True, ("onnx", "torch"))
    assert WorkerReply.from_line(reply.to_line()) == reply
    with pytest.raises(JobFormatError, match="version 2"):
        WorkerReply.from_line('{"version": 2, "job": "j"}')
