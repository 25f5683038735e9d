"""Simulated hardware-specific stages for the Ray executor's tests and bench (``-p fixture_plugins.sim_gpu``).

``sim.build`` must run on the target's hardware (``HardwarePolicy.TARGET``), like AOTInductor
for CUDA: the planner refuses it on this GPU-less host unless an executor provides the hardware.
It records when and where it ran in its metadata, so a test can tell which Ray node took it and
whether two builds overlapped. ``sim.work`` is a portable stage that just takes time. With
``BUILDSYS_TEST_PROGRESS=FILE`` the driver appends every progress report it receives to FILE.
"""

from __future__ import annotations

import json
import os
import signal
import time

from pydantic import BaseModel, ConfigDict, Field

from buildsys import HardwarePolicy, KindSpec, StageSpec, hookimpl


class BuildOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.0, ge=0, description="how long the build takes")
    pid_file: str | None = Field(default=None, description="write {pid, ppid} here once running (tests kill them)")
    crash: bool = Field(default=False, description="die with SIGSEGV once the pid file is written")


class WorkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.0, ge=0)
    label: str = "work"
    busy: bool = Field(default=False, description="compute instead of sleeping")


def _wait(ctx, seconds: float, busy: bool = False) -> None:
    """Take ``seconds``, reporting progress ten times a second."""
    steps, start = max(1, int(seconds * 10)), time.perf_counter()
    for step in range(steps):
        ctx.progress(step, steps, "building")
        until = start + seconds * (step + 1) / steps
        while time.perf_counter() < until:
            if busy:
                sum(i * i for i in range(10_000))
            else:
                time.sleep(0.01)


def build_engine(ctx, inputs, options: BuildOptions):
    started = time.time()
    if options.pid_file:
        with open(options.pid_file + ".tmp", "w") as f:
            json.dump({"pid": os.getpid(), "ppid": os.getppid()}, f)
        os.replace(options.pid_file + ".tmp", options.pid_file)
    if options.crash:
        os.kill(os.getpid(), signal.SIGSEGV)
    _wait(ctx, options.seconds)
    text = inputs[0].primary.read_text()
    (ctx.out_dir / "engine.bin").write_bytes(f"{ctx.hardware}\n{text}".encode()[::-1])
    return {"primary": "engine.bin", "started": started, "finished": time.time(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def work(ctx, inputs, options: WorkOptions):
    _wait(ctx, options.seconds, options.busy)
    (ctx.out_dir / "work.txt").write_text(f"{options.label}\n{inputs[0].primary.read_text()}")
    return {"primary": "work.txt"}


@hookimpl
def buildsys_register_kinds():
    return [KindSpec("sim.engine", 4, "a simulated engine, built on its target GPU"),
            KindSpec("sim.work", 3, "the result of a slow portable stage")]


@hookimpl
def buildsys_register_stages():
    return [StageSpec("sim.build", consumes=("text",), produces="sim.engine", run=build_engine,
                      options=BuildOptions, hardware=HardwarePolicy.TARGET,
                      description="must run on the GPU it builds for"),
            StageSpec("sim.work", consumes=("text",), produces="sim.work", run=work, options=WorkOptions,
                      description="takes a fixed time (sleeps, or computes with busy)")]


@hookimpl
def buildsys_stage_progress(node, done, total, message):
    path = os.environ.get("BUILDSYS_TEST_PROGRESS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"node": node.id, "done": done, "total": total, "message": message}) + "\n")
