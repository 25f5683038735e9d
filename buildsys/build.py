"""The build: plan -> execute (through an executor) -> artifacts -> lockfile.

``Driver`` is what executors call back: it turns a ready node into a cache hit or a ``Job``,
and a finished job into a cache entry. Artifacts and the lock are written only after every
node is settled, and the lock only after ``--locked``/``--frozen`` checks pass.

Settings for ``build`` may also come from ``buildsys.toml`` beside the manifest (or the
``[tool.buildsys]`` table of a ``pyproject.toml`` there); command-line flags win::

    [build]
    executor = "ray"                     # --executor
    store = "s3://bucket/buildsys"       # --store: the shared content-addressed store
    [executors.ray]                      # options of that executor (--address ...)
    address = "10.0.0.5:6379"
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import lock as lockfile
from .artifacts import ArtifactWriter
from .config import config_path, read_config
from .fsutil import file_lock
from .cache import Entry, SharedStore, action_key
from .errors import BuildFailed, LockMismatch, PlanError
from .graph import Graph, Node
from .records import BUILT, CACHED, FAILED, RESOLVED, SKIPPED, Job, NodeOutcome, Wait
from .jobs import JOB_FILE, JobInput, JobResult, JobSource, JobSpec, collect_result
from .plan import OfferedHardware, plan
from .project import Project, buildsys_version


BUILT_ON = "built_on"  # entry meta key: where an executor ran the node (JobResult.built_on)


@dataclass
class BuildOptions:
    """``jobs`` None: the executor's ``default_jobs``. ``executor``/``store`` None: the config
    file's, else ``local`` and no shared store. ``executor_options`` override the config's
    ``[executors.<name>]`` table."""

    targets: list[str] | None = None
    jobs: int | None = 1
    keep_going: bool = False
    locked: bool = False
    frozen: bool = False
    executor: str | None = "local"
    store: str | None = None
    executor_options: dict = field(default_factory=dict)


@dataclass
class BuildResult:
    graph: Graph
    outcomes: dict[str, NodeOutcome]
    directories: dict[str, Path]
    lock_changed: bool


class Driver:
    """Per-node bookkeeping for one build; see ``buildsys.executor`` for the protocol."""

    def __init__(self, project: Project, graph: Graph, frozen: dict | None = None):
        self.project, self.graph, self.frozen = project, graph, frozen
        self.shared = project.store.shared
        self.digests: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.entries: dict[str, Entry] = {}
        self._locks: dict[str, object] = {}
        self._waiting: set[str] = set()
        self._hook = project.pm.hook

    # -- protocol -------------------------------------------------------------------------

    def prepare(self, node_id: str) -> NodeOutcome | Job | Wait:
        node = self.graph.nodes[node_id]
        if node.is_source:
            self.digests[node_id] = self.project.source_digest()
            return self._settle(node, NodeOutcome(RESOLVED))
        key = self.keys[node_id] = self._key(node)
        if (entry := self._lookup(node, key)) is not None:
            return self._hit(node, entry)
        lock = self.project.store.lock(key)
        if not lock.try_acquire():
            if node_id not in self._waiting:
                self._waiting.add(node_id)
                self.project.pm.hook.buildsys_stage_started(node=node)
            return Wait()
        if (entry := self.project.store.lookup(key)) is not None:  # built meanwhile by another build
            lock.release()
            return self._hit(node, entry)
        self._locks[node_id] = lock
        try:
            self.project.specs.stage(node.stage).check_requirements()
        except Exception as exc:
            lock.release()
            return self._settle(node, NodeOutcome(FAILED, error=str(exc)))
        job = self._write_job(node, key)
        if node_id not in self._waiting:
            self._hook.buildsys_stage_started(node=node)
        return job

    def finish(self, node_id: str, job: Job, returncode: int) -> NodeOutcome:
        node = self.graph.nodes[node_id]
        seconds = time.perf_counter() - job.started
        try:
            result = _read_result(job, returncode)
            if result.ok:
                meta = dict(result.meta, **({BUILT_ON: result.built_on} if result.built_on else {}))
                entry = self.project.store.commit(self.keys[node_id], job.workdir / "out", meta, result.seconds)
                outcome = self._check_frozen(node, entry) or self._record(node, entry, BUILT, seconds)
            else:
                outcome = NodeOutcome(FAILED, seconds, error=result.error, log=self._keep_log(node, job))
        finally:
            self._release(node_id)
            shutil.rmtree(job.workdir, ignore_errors=True)
        return self._settle(node, outcome)

    def skip(self, node_id: str, reason: str) -> NodeOutcome:
        return self._settle(self.graph.nodes[node_id], NodeOutcome(SKIPPED, error=reason))

    def progress(self, node_id: str, done: float, total: float, message: str) -> None:
        self._hook.buildsys_stage_progress(node=self.graph.nodes[node_id], done=done, total=total,
                                           message=message)

    def abort(self, node_id: str, job: Job) -> None:
        self._release(node_id)
        shutil.rmtree(job.workdir, ignore_errors=True)

    def source_files(self) -> tuple[list[tuple[str, Path, str, int]], str]:
        """The model source's files for a job that runs on another machine.

        Returns ``([(name, path, sha256, size)], root)``: names relative to the files' common
        folder, and the manifest's folder relative to it (``model.entrypoint`` is relative to that)."""
        manifest = self.project.manifest
        source = self.project.specs.source(manifest.model.framework)
        root = manifest.root.resolve()
        paths = sorted({Path(p).resolve() for p in source.fingerprint(manifest.model, manifest.root)})
        base = Path(os.path.commonpath([root, *paths]))
        files = [(p.relative_to(base).as_posix(), p, self.project.store.file_digest(p), p.stat().st_size)
                 for p in paths]
        return files, root.relative_to(base).as_posix()

    # -- helpers --------------------------------------------------------------------------

    def _key(self, node: Node) -> str:
        return node_key(self.project, node, self.digests)

    def _lookup(self, node: Node, key: str) -> Entry | None:
        if self.frozen is not None:
            locked = self.frozen["nodes"].get(node.id, {})
            if locked.get("action_key"):
                entry = self.project.store.lookup(locked["action_key"])
                if entry is not None:
                    self.keys[node.id] = locked["action_key"]
                    return entry
        return self.project.store.lookup(key)

    def _hit(self, node: Node, entry: Entry) -> NodeOutcome:
        return self._settle(node, self._record(node, entry, CACHED, 0.0))

    def _record(self, node: Node, entry: Entry, status: str, seconds: float) -> NodeOutcome:
        self.entries[node.id] = entry
        self.digests[node.id] = entry.digest
        return NodeOutcome(status, seconds, warnings=tuple(entry.meta.get("warnings") or ()))

    def _check_frozen(self, node: Node, entry: Entry) -> NodeOutcome | None:
        locked = (self.frozen or {}).get("nodes", {}).get(node.id)
        if locked and node.deterministic and locked.get("digest") != entry.digest:
            return NodeOutcome(FAILED, error="--frozen: built output differs from the lockfile "
                               f"(digest {entry.digest[:12]}… != locked {locked.get('digest', '')[:12]}…)")
        return None

    def _settle(self, node: Node, outcome: NodeOutcome) -> NodeOutcome:
        self._hook.buildsys_stage_finished(node=node, outcome=outcome)
        return outcome

    def _release(self, node_id: str) -> None:
        lock = self._locks.pop(node_id, None)
        if lock is not None:
            lock.release()

    def _write_job(self, node: Node, key: str) -> Job:
        store, manifest = self.project.store, self.project.manifest
        workdir = store.workdir(node.stage)
        (workdir / "out").mkdir()
        inputs = tuple(self._job_input(self.graph.nodes[i], workdir / "inputs" / str(n))
                       for n, i in enumerate(node.inputs))
        calibration = manifest.calibration.model_dump(mode="json") if manifest.calibration else None
        source = JobSource(model=manifest.model_block(), root=str(manifest.root),
                           manifest={"name": manifest.name, "version": manifest.version, "calibration": calibration,
                                     "validation": {k: v.model_dump(mode="json")
                                                    for k, v in manifest.validation.items()}})
        spec = JobSpec(node=node.id, stage=node.stage, options=node.options, key=key,
                       targets=tuple(self.graph.targets_using(node.id)), hardware=node.hardware,
                       precision=node.precision, out_dir=str(workdir / "out"), inputs=inputs, source=source,
                       plugins=self.project.config.to_json(), persistent=str(store.persistent_root))
        job_file = workdir / JOB_FILE
        spec.write(job_file)
        return Job(node_id=node.id, workdir=workdir, job_file=job_file)

    def _job_input(self, node: Node, directory: Path) -> JobInput:
        entry = self.entries.get(node.id)
        if entry is None:  # the model source: nothing stored
            return JobInput(node.kind, node.precision, node.hardware)
        for f in entry.files:
            target = directory / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(self.project.store.blob_path(f.sha256), target)
        return JobInput(node.kind, node.precision, node.hardware, str(directory), entry.files, entry.meta)

    def _keep_log(self, node: Node, job: Job) -> Path | None:
        log = job.log_file
        if not log.exists():
            return None
        kept = self.project.store.root / "logs" / f"{node.id.replace('#', '-')}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, kept)
        return kept


def node_key(project: Project, node: Node, digests: dict[str, str]) -> str:
    """The action key of ``node`` once every input's digest is in ``digests``."""
    stage = project.specs.stage(node.stage)
    tools = dict(stage.tool_versions(), **project.extension_plugins(stage.extension_hooks))
    return action_key(node.stage, node.stage_version, node.options,
                      [digests[i] for i in node.inputs], tools, node.hardware, node.precision)


def _read_result(job: Job, returncode: int) -> JobResult:
    result = collect_result(job.job_file, returncode)
    if result.traceback:
        with open(job.log_file, "a") as log:
            log.write(result.traceback)
    return result


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# --------------------------------------------------------------------------------------------


def build(project: Project, options: BuildOptions) -> BuildResult:
    """Build the selected targets; raise ``BuildFailed``/``PlanError``/``LockMismatch``."""
    options, executor = executor_for(project, options)
    if options.store:
        project.store.shared = SharedStore(options.store)
    graph = _selected_graph(project, options, executor)
    lock_file = lockfile.lock_path(project.manifest.path)
    old_lock = lockfile.read(lock_file)
    frozen = _frozen_lock(old_lock, graph, lock_file) if options.frozen else None
    driver = Driver(project, graph, frozen)
    jobs = options.jobs if options.jobs is not None else getattr(executor, "default_jobs", 1)
    project.pm.hook.buildsys_build_started(graph=graph, host=project.host, jobs=jobs)
    outcomes = executor.execute(driver, max(1, jobs), options.keep_going)
    ok = all(o.ok for o in outcomes.values())
    project.pm.hook.buildsys_build_finished(outcomes=outcomes, ok=ok)
    built = [t for t in graph.targets if all(outcomes[n.id].ok for n in graph.needs(t))]
    records = {t: target_record(project, graph, driver, t) for t in built}
    new_lock = lockfile.merge(old_lock, lock_data(project, graph, driver, records), built)
    if options.locked and old_lock != new_lock and lockfile.diff(old_lock or {}, new_lock, lock_file.name):
        raise LockMismatch("--locked: the lockfile would change:\n"
                           + "\n".join(lockfile.diff(old_lock or {}, new_lock, lock_file.name)),
                           hint="run 'buildsys build' without --locked and commit the new lock")
    writer = ArtifactWriter(project.store, project.out_root)
    # Two builds of one manifest may finish together: one at a time swaps directories and the lock.
    with file_lock(project.store.root / "locks" / f"write-{project.manifest.name}.lock"):
        directories = {t: writer.write(project.manifest, t, driver.entries[graph.targets[t]], records[t])
                       for t in built}
        nothing_to_record = old_lock is None and not new_lock["targets"]
        changed = False if options.frozen or nothing_to_record else lockfile.write(lock_file, new_lock)
    result = BuildResult(graph, outcomes, directories, changed)
    if not ok or graph.refused:
        _raise_failures(graph, outcomes, result)
    return result


def settled_options(manifest_path: Path, options: BuildOptions) -> BuildOptions:
    """``options`` with what it leaves open (None) taken from the config file beside the manifest."""
    config, path = read_config(manifest_path)
    settings = config.get("build", {})
    executor = options.executor or settings.get("executor") or "local"
    store = options.store or (config_path(settings["store"], path) if settings.get("store") else None)
    executor_options = dict(config.get("executors", {}).get(executor, {}), **options.executor_options)
    return replace(options, executor=executor, store=store, executor_options=executor_options)


def planned(project: Project, executor=None) -> Graph:
    """The manifest's plan for this host plus the hardware ``executor`` provides, if it says
    (``provides``): under ``--executor ray``, a stage for a GPU this host lacks is planned."""
    provides = getattr(executor, "provides", None)
    if provides is None:
        return project.graph
    return plan(project.manifest, project.specs, OfferedHardware(project.host, provides))


def executor_for(project: Project, options: BuildOptions):
    """``options`` completed from buildsys.toml, and the executor they name, created."""
    options = settled_options(project.manifest.path, options)
    return options, project.specs.executor(options.executor).create(**options.executor_options)


def _selected_graph(project: Project, options: BuildOptions, executor=None) -> Graph:
    graph = planned(project, executor)
    names = options.targets or list(project.manifest.targets)
    unknown = [n for n in names if n not in project.manifest.targets]
    if unknown:
        raise PlanError(f"unknown target(s): {', '.join(unknown)}",
                        hint=f"targets in {project.manifest.path.name}: {', '.join(project.manifest.targets)}")
    graph = graph.select(names)
    if graph.refused and not options.keep_going:
        first = next(iter(graph.refused.values()))
        if len(graph.refused) == 1:
            raise first
        raise PlanError("\n".join(str(e) for e in graph.refused.values()),
                        hint="fix the targets, or build the rest with --keep-going")
    return graph


def _frozen_lock(old_lock: dict | None, graph: Graph, lock_file: Path) -> dict:
    if old_lock is None:
        raise LockMismatch(f"--frozen needs a lockfile, and {lock_file} does not exist",
                           hint="run 'buildsys build' once to write it")
    missing = [n.id for n in graph.nodes.values() if not n.is_source and n.id not in old_lock.get("nodes", {})]
    if missing:
        raise LockMismatch(f"--frozen: the plan has nodes the lockfile lacks: {', '.join(missing)}",
                           hint="the manifest's targets or options changed; rebuild without --frozen")
    return old_lock


def _raise_failures(graph: Graph, outcomes: dict[str, NodeOutcome], result: BuildResult) -> None:
    refused = [f"refused: {graph.refused[t]}" for t in graph.refused]
    failures = []
    for node_id, outcome in outcomes.items():
        if outcome.status == FAILED:
            targets = ", ".join(graph.targets_using(node_id))
            log = f" (log: {outcome.log})" if outcome.log else ""
            failures.append(f"{node_id} [targets: {targets}]: {outcome.error}{log}")
    skipped = [n for n, o in outcomes.items() if o.status == SKIPPED]
    error = BuildFailed(failures, skipped, refused)
    error.result = result  # what did succeed, for --json and callers
    raise error


# --------------------------------------------------------------------------------------------


def target_record(project: Project, graph: Graph, driver: Driver, target: str) -> dict:
    """The artifact.json content for ``target`` (files are added when materialised)."""
    manifest, spec = project.manifest, project.manifest.targets[target]
    final = graph.nodes[graph.targets[target]]
    entry = driver.entries[final.id]
    chain = [_chain_item(n, driver) for n in graph.chain(target)]
    meta = {k: v for k, v in entry.meta.items() if k not in ("primary", BUILT_ON)}
    return {
        "schema": 1, "name": manifest.name, "version": manifest.version, "target": target,
        "kind": final.kind, "format": spec.format, "precision": final.precision,
        "hardware": final.hardware, "deterministic": final.deterministic,
        "signature": {"inputs": [i.model_dump(mode="json") for i in manifest.model.inputs],
                      "dims": {k: v.model_dump(mode="json", exclude_none=True) for k, v in manifest.model.dims.items()},
                      "outputs": entry.meta.get("outputs")},
        "runtime": project.specs.stage(final.stage).tool_versions(),
        "chain": chain, "meta": meta, "validation": _validation_record(graph, driver, target),
        "host": _host_record(project, entry), "buildsys": buildsys_version(),
    }


def _host_record(project: Project, entry: Entry) -> dict:
    """This host, and (in its facts) the machine an executor built the final node on, if elsewhere."""
    host = project.host.describe()
    if entry.meta.get(BUILT_ON):
        host["facts"] = dict(host["facts"], **{BUILT_ON: entry.meta[BUILT_ON]})
    return host


def _validation_record(graph: Graph, driver: Driver, target: str) -> dict:
    if target in graph.validations:
        entry = driver.entries[graph.validations[target]]
        return dict(entry.meta.get("report", {}), status="passed", action_key=entry.key)
    return {"status": "not run", "reason": graph.unvalidated.get(target, "not planned")}


def _chain_item(node: Node, driver: Driver) -> dict:
    if node.is_source:
        return {"node": node.id, "stage": node.stage, "action_key": driver.digests[node.id]}
    entry = driver.entries[node.id]
    return {"node": node.id, "stage": node.stage, "stage_version": node.stage_version,
            "action_key": entry.key, "options": node.options, "hardware": node.hardware,
            "precision": node.precision, "deterministic": node.deterministic,
            "seconds": round(entry.seconds, 3),
            **({BUILT_ON: entry.meta[BUILT_ON]} if entry.meta.get(BUILT_ON) else {})}


def lock_data(project: Project, graph: Graph, driver: Driver, records: dict[str, dict]) -> dict:
    nodes = {}
    for target in records:
        for node in graph.needs(target):
            nodes[node.id] = _lock_node(node, driver)
    targets = {t: {"node": graph.targets[t], "kind": r["kind"], "format": r["format"],
                   "precision": r["precision"], "hardware": r["hardware"],
                   "nodes": [n.id for n in graph.needs(t)],
                   "files": _final_files(project, t, driver.entries[graph.targets[t]], r)}
               for t, r in records.items()}
    return {"schema": lockfile.LOCK_SCHEMA, "buildsys": buildsys_version(),
            "manifest": project.manifest.path.name, "plugins": project.plugin_versions(),
            "tools": project.tool_versions(), "targets": dict(sorted(targets.items())),
            "nodes": dict(sorted(nodes.items()))}


def _lock_node(node: Node, driver: Driver) -> dict:
    if node.is_source:
        return {"stage": node.stage, "kind": node.kind, "recipe": node.recipe, "digest": driver.digests[node.id],
                "deterministic": True}
    entry = driver.entries[node.id]
    return {"stage": node.stage, "stage_version": node.stage_version, "options": node.options,
            "kind": node.kind, "precision": node.precision, "hardware": node.hardware,
            "deterministic": node.deterministic, "recipe": node.recipe, "action_key": entry.key,
            "inputs": [driver.digests[i] for i in node.inputs], "digest": entry.digest,
            "outputs": [f.to_json() for f in entry.files]}


def _final_files(project: Project, target: str, entry: Entry, record: dict) -> list[dict]:
    rename = ArtifactWriter(project.store, project.out_root).names(project.manifest, target, entry, record)
    return [dict(f.to_json(), name=rename.get(f.name, f.name)) for f in entry.files]
