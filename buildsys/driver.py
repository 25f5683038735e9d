"""The per-node driver of one build: what executors call back (``buildsys.executor.Driver``).

``prepare`` turns a node whose inputs are settled into a cache hit or a ``Job`` (holding the
node's store lock while it runs); ``finish`` turns a finished job into a cache entry. What the
driver learns of every settled node (its digest, its ``Action``, its cache entry) is kept in a
``Settled`` record, which the artifact and lock writers read after the build. ``status`` answers
``buildsys plan`` with the same cache check, without locking or running anything.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cache import Action, Entry
from .graph import Graph, Node
from .jobs import JOB_FILE, MANIFEST_ERRORS, JobInput, JobResult, JobSource, JobSpec, collect_result
from .records import BUILT, BUILT_ON, CACHED, FAILED, RESOLVED, SKIPPED, Job, NodeOutcome, Wait


@dataclass
class Settled:
    """What the build knows of each settled node: ``digests`` (node id -> output digest; the
    source's fingerprint for the source node), ``actions`` and ``entries`` (for stored nodes)."""

    digests: dict[str, str] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)

    def key(self, node_id: str) -> str:
        return self.entries[node_id].key


class BuildDriver:
    """Per-node bookkeeping for one build; ``frozen`` is the lock of ``--frozen`` (or None)."""

    def __init__(self, project, graph: Graph, frozen: dict | None = None):
        self.project, self.graph, self.frozen = project, graph, frozen
        self.shared = project.store.shared
        self.settled = Settled()
        self._keys: dict[str, str] = {}
        self._locks: dict[str, object] = {}
        self._waiting: set[str] = set()
        self._notes: dict[str, list[str]] = {}  # node id -> what to tell the user once it settles
        self._linked: dict[Path, list] = {}  # job workdir -> (name, cache blob, (size, mtime)) per input file
        self._workdirs: set[Path] = set()  # job folders made and not yet finished or aborted
        self._hook = project.pm.hook

    # -- the executor protocol ------------------------------------------------------------

    def prepare(self, node_id: str) -> NodeOutcome | Job | Wait:
        node = self.graph.nodes[node_id]
        if node.is_source:
            self.settled.digests[node_id] = self.project.source_digest()
            return self._settle(node, NodeOutcome(RESOLVED))
        key = self._keys[node_id] = self.action(node).key
        if (entry := self._lookup(node, key)) is not None:
            return self._hit(node, entry)
        if key in self.project.store.evicted:
            self._notes.setdefault(node_id, []).append(self.project.store.evicted.pop(key))
        lock = self.project.store.lock(key)
        if not lock.try_acquire():
            if node_id not in self._waiting:
                self._waiting.add(node_id)
                self._hook.buildsys_stage_started(node=node)
            return Wait()
        if (entry := self.project.store.lookup(key)) is not None:  # built meanwhile by another build
            lock.release()
            return self._hit(node, entry)
        self._locks[node_id] = lock
        try:
            self.project.catalog.stage(node.stage).check_requirements()
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
            written = self._inputs_written(job)
            if written:
                outcome = NodeOutcome(FAILED, seconds, error=written, log=self._keep_log(node, job))
            elif result.ok:
                meta = dict(result.meta, **({BUILT_ON: result.built_on} if result.built_on else {}))
                entry = self.project.store.commit(self._keys[node_id], job.workdir / "out", meta, result.seconds)
                outcome = self._check_frozen(node, entry) or self._record(node, entry, BUILT, seconds)
            else:
                outcome = NodeOutcome(FAILED, seconds, error=result.error, log=self._keep_log(node, job),
                                      bad_input=result.error_type in MANIFEST_ERRORS)
        finally:
            self._release(node_id)
            self._workdirs.discard(job.workdir)
            shutil.rmtree(job.workdir, ignore_errors=True)
        return self._settle(node, outcome)

    def _inputs_written(self, job: Job) -> str | None:
        """Inputs are hard links to cache blobs: a stage that writes into one damages the cache
        (and every build reading that blob) — checked by size and mtime after each job; a blob
        written to is dropped (its producer rebuilds) and the node fails naming the file."""
        changed = [(name, blob) for name, blob, before in self._linked.pop(job.workdir, [])
                   if _written(blob) != before]
        for _, blob in changed:
            blob.unlink(missing_ok=True)
        if not changed:
            return None
        names = ", ".join(name for name, _ in changed)
        return (f"the stage wrote into its input {names} (inputs are shared with the build cache, read-only): "
                "the damaged cache copy was dropped and is rebuilt next time; the stage (or a library it calls) "
                "must write only under ctx.out_dir — copy an input before a tool that rewrites it")

    def skip(self, node_id: str, reason: str) -> NodeOutcome:
        return self._settle(self.graph.nodes[node_id], NodeOutcome(SKIPPED, error=reason))

    def progress(self, node_id: str, done: float, total: float, message: str) -> None:
        self._hook.buildsys_stage_progress(node=self.graph.nodes[node_id], done=done, total=total,
                                           message=message)

    def abort(self, node_id: str, job: Job) -> None:
        self._linked.pop(job.workdir, None)
        self._workdirs.discard(job.workdir)
        self._release(node_id)
        shutil.rmtree(job.workdir, ignore_errors=True)

    def discard_unfinished(self) -> None:
        """After a stopped build (every job stopped): remove the job folders of jobs prepared but
        never started or finished, and release their node locks, so nothing half-made is left."""
        for workdir in list(self._workdirs):
            shutil.rmtree(workdir, ignore_errors=True)
        self._workdirs.clear()
        for node_id in list(self._locks):
            self._release(node_id)

    def source_files(self) -> tuple[list[tuple[str, Path, str, int]], str]:
        """The model source's files for a job that runs on another machine.

        Returns ``([(name, path, sha256, size)], root)``: names relative to the files' common
        folder, and the manifest's folder relative to it (``model.entrypoint`` is relative to that)."""
        manifest = self.project.manifest
        source = self.project.catalog.source(manifest.model.framework)
        root = manifest.root.resolve()
        paths = sorted({Path(p).resolve() for p in source.fingerprint(manifest.model, manifest.root)})
        base = Path(os.path.commonpath([root, *paths]))
        files = [(p.relative_to(base).as_posix(), p, self.project.store.file_digest(p), p.stat().st_size)
                 for p in paths]
        return files, root.relative_to(base).as_posix()

    # -- for buildsys plan ----------------------------------------------------------------

    def status(self, node_id: str) -> tuple[str, str | None]:
        """``(status, action key)`` of a node as ``prepare`` would find it, without locking or
        building: ``source``, ``cached`` or ``will build`` (key None while an input is unbuilt).
        Ask in graph order, so each node's inputs are settled first."""
        node = self.graph.nodes[node_id]
        if node.is_source:
            self.settled.digests[node_id] = self.project.source_digest()
            return "source", self.settled.digests[node_id]
        if not all(i in self.settled.digests for i in node.inputs):
            return "will build", None
        key = self.action(node).key
        entry = self._lookup(node, key)
        if entry is None:
            return "will build", key
        self._record(node, entry, CACHED, 0.0)
        return "cached", entry.key

    # -- helpers --------------------------------------------------------------------------

    def action(self, node: Node) -> Action:
        """The node's action once every input is settled (remembered for the lockfile)."""
        stage = self.project.catalog.stage(node.stage)
        tools = dict(stage.tool_versions(), **self.project.extension_plugins(stage.extension_hooks))
        action = Action(node.stage, node.stage_version, node.options,
                        tuple(self.settled.digests[i] for i in node.inputs), tools, node.hardware, node.precision)
        self.settled.actions[node.id] = action
        return action

    def _lookup(self, node: Node, key: str) -> Entry | None:
        if self.frozen is not None:
            locked = self.frozen["nodes"].get(node.id, {})
            if locked.get("action_key"):
                entry = self.project.store.lookup(locked["action_key"])
                if entry is not None:
                    self._keys[node.id] = locked["action_key"]
                    return entry
        return self.project.store.lookup(key)

    def _hit(self, node: Node, entry: Entry) -> NodeOutcome:
        return self._settle(node, self._record(node, entry, CACHED, 0.0))

    def _record(self, node: Node, entry: Entry, status: str, seconds: float) -> NodeOutcome:
        self.settled.entries[node.id] = entry
        self.settled.digests[node.id] = entry.digest
        notes = tuple(self._notes.pop(node.id, ()))
        return NodeOutcome(status, seconds, warnings=notes + tuple(entry.meta.get("warnings") or ()))

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
        store = self.project.store
        workdir = store.workdir(node.stage)
        self._workdirs.add(workdir)
        (workdir / "out").mkdir()
        inputs = tuple(self._job_input(self.graph.nodes[i], workdir / "inputs" / str(n))
                       for n, i in enumerate(node.inputs))
        spec = JobSpec(node=node.id, stage=node.stage, options=node.options, key=key,
                       targets=tuple(self.graph.targets_using(node.id)), hardware=node.hardware,
                       precision=node.precision, out_dir=str(workdir / "out"), inputs=inputs,
                       source=self._job_source(), plugins=self.project.config.to_json(),
                       persistent=str(store.persistent_root))
        job_file = workdir / JOB_FILE
        spec.write(job_file)
        stage = self.project.catalog.stage(node.stage)
        return Job(node_id=node.id, workdir=workdir, job_file=job_file,
                   requires=tuple(sorted(r.distribution for r in stage.requires)),
                   isolated=stage.isolated, timeout=stage.timeout)

    def _job_source(self) -> JobSource:
        manifest = self.project.manifest
        calibration = manifest.calibration.model_dump(mode="json") if manifest.calibration else None
        validation = {k: v.model_dump(mode="json") for k, v in manifest.validation.items()}
        return JobSource(model=manifest.model_block(), root=str(manifest.root),
                         manifest={"name": manifest.name, "version": manifest.version,
                                   "calibration": calibration, "validation": validation})

    def _job_input(self, node: Node, directory: Path) -> JobInput:
        entry = self.settled.entries.get(node.id)
        if entry is None:  # the model source: nothing stored
            return JobInput(node.kind, node.precision, node.hardware)
        for f in entry.files:
            target = directory / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            blob = self.project.store.blob_path(f.sha256)
            _link_or_copy(blob, target)
            self._linked.setdefault(directory.parent.parent, []).append((f.name, blob, _written(blob)))
        return JobInput(node.kind, node.precision, node.hardware, str(directory), entry.files, entry.meta)

    def _keep_log(self, node: Node, job: Job) -> Path | None:
        if not job.log_file.exists():
            return None
        kept = self.project.store.root / "logs" / f"{node.id.replace('#', '-')}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(job.log_file, kept)
        return kept


def _read_result(job: Job, returncode: int) -> JobResult:
    result = collect_result(job.job_file, returncode)
    if result.traceback:
        with open(job.log_file, "a") as log:
            log.write(result.traceback)
    return result


def _written(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, None when it is gone: what a write into it changes."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
