"""The Ray executor: every node of the DAG is a Ray task, placed by its hardware.

The scheduling loop (readiness, ``-j``, ``--keep-going``, Ctrl-C) is ``buildsys.BaseExecutor``,
the same as the local executor's; this class only starts, watches and stops Ray tasks. Ray does
the scheduling: each task asks for the resources of ``placement.demand_for(node.runs_on)`` and
Ray runs it on a node that has them, as many at once as the cluster holds.

The driver connects only when a node actually has to be built (a no-op rebuild needs no
cluster), and before the first task starts it checks that for every node still to build some
alive Ray node has the hardware; otherwise nothing starts and the error names what is missing.
Artifacts travel through the shared store (``--store``), never Ray's object store; the driver
verifies every downloaded file and then settles the node through ``Driver.finish``, so cache
entries, artifacts and the lockfile are written exactly as with the local executor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field

from buildsys import BaseExecutor, BackendUnavailable, BuildsysError, Job, JobResult, NodeOutcome

from . import placement, shipping
from .errors import ClusterLacksHardware, RayExecutorError
from .options import RayOptions

POLL_SECONDS = 0.05
CANCEL_GRACE_SECONDS = 5.0


@dataclass
class Running:
    """A submitted task: its event stream, and where and since when it runs once it says so (a
    task Ray keeps queued for resources is not running: its stage's timeout has not begun)."""

    stream: object
    where: dict = field(default_factory=dict)
    since: float | None = None


class RayExecutor(BaseExecutor):
    # Without -j, as many tasks in flight as the cluster takes: Ray queues what does not fit.
    default_jobs = 256

    def __init__(self, **options):
        super().__init__()
        self.options = RayOptions.parse(options)
        self._ray = None
        self._remote = None
        self._shipped: set[str] = set()

    def provides(self, request):
        """Any concrete CPU or CUDA hardware: whether the cluster has it is checked before anything starts."""
        return request if request.device in ("cpu", "cuda") and request.concrete else None

    # -- BaseExecutor --------------------------------------------------------------------

    def execute(self, driver, jobs: int, keep_going: bool) -> dict[str, NodeOutcome]:
        if driver.shared is None:
            raise RayExecutorError("the ray executor moves artifacts through a shared store, and none is set",
                                   hint="pass --store URL (a path every node mounts, or s3://..., any fsspec URL), "
                                        "or set store in buildsys.toml [build]")
        # Ray's driver prints cluster errors ("a worker died ...") to stdout from a thread of its
        # own: send them to stderr with the rest of the report, so stdout stays for --json.
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return super().execute(driver, jobs, keep_going)
        finally:
            self._disconnect()

    def start(self, driver, job: Job) -> Running:
        try:
            self._connect(driver)
            node = driver.graph.nodes[job.node_id]
            record = shipping.remote_job(driver, job, self._shipped)
            demand = placement.demand_for(node.runs_on, self.options.num_cpus)
            # max_retries=0: a lost task fails its node; Ray must never silently build it twice
            how = {"requires": list(job.requires), "isolated": job.isolated, "pool": self.options.pool}
            stream = self._remote.options(**demand.ray_options(), max_retries=0,
                                          name=f"buildsys {job.node_id}").remote(record, driver.shared.url, how)
        except BaseException:
            driver.abort(job.node_id, job)
            raise
        return Running(stream)

    def reap(self, driver) -> list[tuple[str, NodeOutcome]]:
        if not self.running:
            return []
        streams = {run.stream: node_id for node_id, (run, _) in self.running.items()}
        ready, _ = self._ray.wait(list(streams), num_returns=len(streams), timeout=0)
        done = []
        for stream in ready:
            node_id = streams[stream]
            run, job = self.running[node_id]
            outcome = self._on_event(driver, node_id, run, job, self._next_event(stream))
            if outcome is not None:
                del self.running[node_id]
                done.append((node_id, outcome))
        return done + self._stop_overdue(driver)

    def _limit(self, job: Job) -> float | None:
        return job.timeout if job.timeout is not None else self.options.stage_timeout

    def _stop_overdue(self, driver) -> list[tuple[str, NodeOutcome]]:
        """Cancel the tasks of stages past their timeout (the task stops its stage process); each
        fails its node saying so, the rest of the build goes on."""
        late = {node_id: (run, job) for node_id, (run, job) in self.running.items()
                if (limit := self._limit(job)) is not None and run.since is not None
                and time.perf_counter() - run.since > limit}
        if not late:
            return []
        self._cancel([run.stream for run, _ in late.values()])
        done = []
        for node_id, (run, job) in late.items():
            del self.running[node_id]
            error = (f"the stage ran past its timeout of {self._limit(job):g} s on {_where(run)}; its Ray task was "
                     "cancelled and its stage process stopped (set StageSpec.timeout, or stage_timeout under "
                     "[executors.ray])")
            done.append((node_id, self._fail(driver, node_id, job, error, "")))
        return done

    def idle(self) -> None:
        if self.running:
            self._ray.wait([run.stream for run, _ in self.running.values()], num_returns=1, timeout=POLL_SECONDS)
        else:
            time.sleep(POLL_SECONDS)

    def stop_all(self, driver) -> None:
        """Cancel every task (Ray raises KeyboardInterrupt in it, and it stops its worker
        process); force-kill those still running after a grace period; abort their jobs."""
        if self._ray is not None and self.running:
            self._cancel([run.stream for run, _ in self.running.values()])
        for node_id, (_, job) in self.running.items():
            driver.abort(node_id, job)
        self.running.clear()

    # -- events --------------------------------------------------------------------------

    def _next_event(self, stream) -> dict:
        try:
            return self._ray.get(next(stream))
        except StopIteration:
            return {"event": "ended"}
        except Exception as exc:  # the task or its worker died: RayTaskError, WorkerCrashedError ...
            return {"event": "crashed", "error": _first_line(exc)}

    def _on_event(self, driver, node_id: str, run: Running, job: Job, event: dict) -> NodeOutcome | None:
        kind = event["event"]
        if kind == "started":
            run.where = {key: event[key] for key in ("ray_node_id", "hostname", "ip", "pid")}
            run.since = time.perf_counter()
            return None
        if kind == "progress":
            self.forward_progress_line(driver, node_id, event["line"])
            return None
        if kind == "result":
            return self._settle(driver, node_id, run, job, event)
        what = event.get("error") or "the Ray task ended without a result"
        return self._fail(driver, node_id, job, f"Ray task failed on {_where(run)}: {what}", "")

    def _settle(self, driver, node_id: str, run: Running, job: Job, event: dict) -> NodeOutcome:
        if not event["ok"]:
            return self._fail(driver, node_id, job, f"{event['error']} (on {_where(run)})", event.get("log", ""))
        node = driver.graph.nodes[node_id]
        expected = {"node": node_id, "hardware": node.hardware, "precision": node.precision}
        try:
            if event["tags"] != expected:
                raise BuildsysError(f"the Ray task answered for {event['tags']}, expected {expected}")
            shipping.fetch_outputs(driver.shared, event["files"], job.workdir / "out")
        except BuildsysError as exc:
            return self._fail(driver, node_id, job, f"{exc} (built on {_where(run)})", event.get("log", ""))
        built_on = dict(run.where, executor="ray", worker_pid=event.get("worker_pid"))
        _write_result(job, JobResult(ok=True, meta=event["meta"], seconds=event["seconds"], built_on=built_on),
                      event.get("log", ""))
        return driver.finish(node_id, job, 0)

    def _fail(self, driver, node_id: str, job: Job, error: str, log: str) -> NodeOutcome:
        _write_result(job, JobResult.failure(error), log)
        return driver.finish(node_id, job, 0)

    def _cancel(self, streams: list) -> None:
        """Cancel tasks (Ray raises KeyboardInterrupt in each, which stops its stage process);
        force-kill those still running after a grace period."""
        for stream in streams:
            self._ray.cancel(stream)
        for stream in self._drain(streams, CANCEL_GRACE_SECONDS):
            self._ray.cancel(stream, force=True)

    def _drain(self, streams: list, seconds: float) -> list:
        """Consume cancelled streams until each ends; return those still going after ``seconds``."""
        alive, deadline = list(streams), time.monotonic() + seconds
        while alive and time.monotonic() < deadline:
            ready, _ = self._ray.wait(alive, num_returns=len(alive), timeout=POLL_SECONDS)
            for stream in ready:
                if self._next_event(stream)["event"] in ("ended", "crashed", "result"):
                    alive.remove(stream)
        return alive

    # -- the cluster ---------------------------------------------------------------------

    def _connect(self, driver) -> None:
        if self._ray is not None:
            return
        ray = _import_ray()
        address = self.options.address or os.environ.get("RAY_ADDRESS")
        if not address:
            raise RayExecutorError("the ray executor needs the address of a Ray cluster",
                                   hint="pass --address HOST:PORT, set RAY_ADDRESS, or set address in "
                                        "buildsys.toml [executors.ray]")
        try:
            ray.init(address=address, namespace=self.options.namespace, runtime_env=self.options.runtime_env,
                     logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise RayExecutorError(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}",
                                   hint="is it running ('ray status')? check --address") from None
        self._ray = ray
        self._check_hardware(driver, address)
        from .task import run_node

        self._remote = ray.remote(run_node)

    def _check_hardware(self, driver, address: str) -> None:
        """Fail before any task starts if a node still to build has nowhere to run."""
        graph = driver.graph
        demands = {node_id: placement.demand_for(graph.nodes[node_id].runs_on, self.options.num_cpus)
                   for node_id in graph.nodes
                   if node_id not in self.outcomes and not graph.nodes[node_id].is_source}
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        missing = placement.unmet(demands, nodes)
        if not missing:
            return
        lines = []
        for demand, node_ids in missing.items():
            targets = sorted({t for t in graph.targets if any(n.id in node_ids for n in graph.needs(t))})
            lines.append(f"{demand.describe()} (needed by {', '.join(node_ids)}; targets: {', '.join(targets)})")
        have = ", ".join(placement.offered(nodes)) or "no hardware resources"
        first = next(iter(missing))
        raise ClusterLacksHardware(
            f"the Ray cluster at {address} has no node with: " + "; ".join(lines)
            + f". Its {len(nodes)} alive node(s) offer: {have}",
            hint=f"add a node with that hardware, e.g. '{placement.start_command(first, address)}' "
                 "(see docs/ray.md), or build other targets with -t")

    def _disconnect(self) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("the ray executor needs ray, which is not installed",
                                 hint="pip install 'buildsys[ray]'") from None
    return ray


def _write_result(job: Job, result: JobResult, log: str) -> None:
    """Leave what the task said where ``Driver.finish`` reads it, as a local worker would."""
    job.log_file.write_text(log)
    result.write(job.result_file)


def _where(run: Running) -> str:
    if not run.where:
        return "a Ray node (the task died before it reported which)"
    return f"host {run.where['hostname']} ({run.where['ip']}, Ray node {run.where['ray_node_id'][:12]}…)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
