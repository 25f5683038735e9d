"""The build: plan -> execute (through an executor) -> artifacts -> lockfile.

The per-node work is ``buildsys.driver.BuildDriver``'s (what executors call back); the
artifact.json records come from ``buildsys.artifacts`` and the lock from ``buildsys.lock``.
Artifacts and the lock are written only after every node is settled, and the lock only after
``--locked``/``--frozen`` checks pass.

Settings for ``build`` may also come from ``buildsys.toml`` beside the manifest (or the
``[tool.buildsys]`` table of a ``pyproject.toml`` there); command-line flags win::

    [build]
    executor = "ray"                     # --executor
    store = "s3://bucket/buildsys"       # --store: the shared content-addressed store
    [executors.ray]                      # options of that executor (--address ...)
    address = "10.0.0.5:6379"
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import lock as lockfile
from .artifacts import ArtifactWriter, claim, file_names, target_record, with_files
from .shared_store import SharedStore
from .config import config_path, local_executor_options, read_config
from .driver import BuildDriver, Settled
from .errors import BuildFailed, InputRejected, LockMismatch, PlanError
from .fsutil import file_lock
from .graph import Graph
from .plan import OfferedHardware, plan
from .project import Project, buildsys_version
from .records import FAILED, SKIPPED, NodeOutcome

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """``jobs`` None: the executor's ``default_jobs``. ``executor``/``store`` None: the config
    file's, else ``local`` and no shared store. ``executor_options`` override the config's
    ``[executors.<name>]`` table. ``pool`` False: no warm worker pool (``--no-pool``); None:
    ``[build] pool`` / ``BUILDSYS_POOL``, on by default."""

    targets: list[str] | None = None
    jobs: int | None = 1
    keep_going: bool = False
    locked: bool = False
    frozen: bool = False
    executor: str | None = "local"
    store: str | None = None
    executor_options: dict = field(default_factory=dict)
    pool: bool | None = None


@dataclass
class BuildResult:
    graph: Graph
    outcomes: dict[str, NodeOutcome]
    directories: dict[str, Path]
    lock_changed: bool


def build(project: Project, options: BuildOptions) -> BuildResult:
    """Build the selected targets; raise ``BuildFailed``/``PlanError``/``LockMismatch``."""
    options, executor = executor_for(project, options)
    if options.store:
        project.store.shared = SharedStore(options.store)
    graph = _selected_graph(project, options, executor)
    project.source_digest()  # a model file that cannot be read is an error before anything is written
    lock_file = lockfile.lock_path(project.manifest.path)
    # From the first lookup until the lock is written: gc waits, so nothing this build uses or
    # has made (and no lock references yet) is collected under it.
    with using_store(project.store):
        old_lock = lockfile.read(lock_file)
        frozen = _frozen_lock(old_lock, graph, lock_file) if options.frozen else None
        driver = BuildDriver(project, graph, frozen)
        outcomes = _execute(project, executor, driver, options)
        built = [t for t in graph.targets if all(outcomes[n.id].ok for n in graph.needs(t))]
        directories, changed = _write(project, driver, built, old_lock, lock_file, options)
    result = BuildResult(graph, outcomes, directories, changed)
    if not all(o.ok for o in outcomes.values()) or graph.refused:
        _raise_failures(graph, outcomes, result)
    return result


@contextlib.contextmanager
def using_store(store):
    """Hold the store's shared lock (``Store.usage``), saying so if ``gc`` makes us wait."""
    lock = store.usage()
    lock.acquire(on_wait=lambda: log.warning("waiting for 'buildsys gc' to finish on %s", store.root))
    try:
        yield
    finally:
        lock.release()


def _execute(project: Project, executor, driver: BuildDriver, options: BuildOptions) -> dict:
    jobs = options.jobs if options.jobs is not None else getattr(executor, "default_jobs", 1)
    project.pm.hook.buildsys_build_started(graph=driver.graph, host=project.host, jobs=jobs)
    outcomes = executor.execute(driver, max(1, jobs), options.keep_going)
    project.pm.hook.buildsys_build_finished(outcomes=outcomes, ok=all(o.ok for o in outcomes.values()))
    return outcomes


def _write(project: Project, driver: BuildDriver, built: list[str], old_lock: dict | None, lock_file: Path,
           options: BuildOptions) -> tuple[dict, bool]:
    """Check the lock (``--locked``), then write the built targets' directories and the lock."""
    graph, settled = driver.graph, driver.settled
    records, names = _records(project, graph, settled, built)
    new_lock = lockfile.merge(old_lock, _lock(project, graph, settled, records), built)
    if options.locked and old_lock != new_lock and lockfile.diff(old_lock or {}, new_lock, lock_file.name):
        raise LockMismatch("--locked: the lockfile would change:\n"
                           + "\n".join(lockfile.diff(old_lock or {}, new_lock, lock_file.name)),
                           hint="run 'buildsys build' without --locked and commit the new lock")
    writer = ArtifactWriter(project.store, project.out_root)
    # Two builds of one manifest may finish together: one at a time swaps directories and the lock.
    with file_lock(project.store.root / "locks" / f"write-{project.manifest.name}.lock"):
        if built:
            claim(project.out_root, project.manifest)
        directories = {t: writer.write(project.manifest, t, settled.entries[graph.targets[t]], records[t],
                                       names[t], _provenance(project, records[t], new_lock)) for t in built}
        nothing_to_record = old_lock is None and not new_lock["targets"]
        changed = False if options.frozen or nothing_to_record else lockfile.write(lock_file, new_lock)
    return directories, changed


def _records(project: Project, graph: Graph, settled: Settled, built: list[str]) -> tuple[dict, dict]:
    """Per built target: its complete artifact.json and its file names (store name -> artifact name)."""
    records, names, host = {}, {}, project.host.describe()
    for target in built:
        final = graph.nodes[graph.targets[target]]
        entry = settled.entries[final.id]
        runtime = project.catalog.stage(final.stage).tool_versions()
        names[target] = file_names(project.manifest, target, entry, final.hardware)
        record = target_record(project.manifest, graph, target, settled, runtime=runtime, host=host,
                               version=buildsys_version())
        records[target] = with_files(record, entry, names[target])
    return records, names


def _lock(project: Project, graph: Graph, settled: Settled, records: dict) -> dict:
    manifest = project.manifest
    tools = {t: project.tool_versions(project.plugins_of(graph, [t])) for t in records}
    return lockfile.lock_data(graph, settled, records, name=manifest.name, version=manifest.version,
                              manifest=manifest.path.name, plugins=project.plugin_versions(),
                              tools=tools, buildsys=buildsys_version(), source_files=project.source_files(),
                              source_tools=project.source_tools())


def _provenance(project: Project, record: dict, lock: dict) -> dict:
    """The unsigned provenance envelope of a target (``buildsys sign`` signs it)."""
    from .provenance import target_statement, unsigned

    return unsigned(target_statement(project, record, lock))


def settled_options(manifest_path: Path, options: BuildOptions) -> BuildOptions:
    """``options`` with what it leaves open (None) taken from the config file beside the manifest."""
    config, path = read_config(manifest_path)
    settings = config.get("build", {})
    executor = options.executor or settings.get("executor") or "local"
    store = options.store or (config_path(settings["store"], path) if settings.get("store") else None)
    executor_options = dict(config.get("executors", {}).get(executor, {}), **options.executor_options)
    if executor == "local":
        executor_options.update(local_executor_options(settings))
        if options.pool is not None:
            executor_options["pool"] = options.pool
    elif options.pool is False:  # --no-pool: an executor with a pool of its own takes ``pool`` (ray)
        executor_options["pool"] = False
    jobs = options.jobs if options.jobs is not None else settings.get("jobs")
    return replace(options, executor=executor, store=store, executor_options=executor_options, jobs=jobs)


def planned(project: Project, executor=None) -> Graph:
    """The manifest's plan for this host plus the hardware ``executor`` provides, if it says
    (``provides``): under ``--executor ray``, a stage for a GPU this host lacks is planned."""
    provides = getattr(executor, "provides", None)
    if provides is None:
        return project.graph
    return plan(project.manifest, project.catalog, OfferedHardware(project.host, provides))


def executor_for(project: Project, options: BuildOptions):
    """``options`` completed from buildsys.toml, and the executor they name, created."""
    options = settled_options(project.manifest.path, options)
    return options, project.catalog.executor(options.executor).create(**options.executor_options)


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
    failed = [o for o in outcomes.values() if o.status == FAILED]
    rejected = failed and not refused and all(o.bad_input for o in failed)
    error = (InputRejected if rejected else BuildFailed)(failures, skipped, refused)
    error.result = result  # what did succeed, for --json and callers
    raise error
