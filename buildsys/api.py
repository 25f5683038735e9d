"""The Python API: build a manifest, then load what it built and run it.

``buildsys.build`` is ``buildsys build`` without the terminal: the same engine, the same lock,
the same exceptions (``ManifestError``, ``PlanError``, ``BuildFailed`` ...). ``buildsys.load``
opens one built artifact through the runner its kind registered (the one validation and bench
use) after checking that it is intact and that this host can run it::

    import numpy as np
    import buildsys

    report = buildsys.build("manifests/cnn.yaml", targets=["onnx"])
    session = buildsys.load(report["onnx"].directory)          # or load("manifests/cnn.yaml", target="onnx")
    outputs = session.run({"images": np.zeros((2, 3, 32, 32), np.float32)})

``session.run`` takes a dict of arrays by input name and returns a dict of numpy arrays by
output name; wrong names, dtypes or shapes are refused with one line naming the input and what
the artifact expects, before the runtime sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BuildFailed, BuildsysError, IncompatibleHardware, VerifyError

DEVICES = ("auto", "cpu", "cuda")


# -- build ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetResult:
    """How one target ended: ``status`` is ``built`` (a node of it ran), ``cached`` (all were
    cached), ``failed``, ``skipped`` (something it needs failed) or ``refused`` (cannot be
    planned here). ``directory`` and ``artifact`` (its artifact.json) are set when it was
    written; ``error`` says why not otherwise."""

    name: str
    status: str
    directory: Path | None = None
    artifact: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("built", "cached")


@dataclass(frozen=True)
class BuildReport:
    """What ``buildsys.build`` did: ``targets`` by name (``report["onnx"]`` reads one), whether
    the lockfile changed, and ``ok`` when every selected target was written."""

    manifest: Path
    targets: dict[str, TargetResult]
    lock_changed: bool

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets.values())

    def __getitem__(self, target: str) -> TargetResult:
        return self.targets[target]


def build(manifest: str | Path, targets: Sequence[str] | None = None, *, jobs: int | None = None,
          keep_going: bool = False, locked: bool = False, frozen: bool = False, executor: str | None = None,
          pool: bool | None = None, out: str | Path | None = None, cache_dir: str | Path | None = None,
          plugins: Sequence[str] = (), progress: bool = False) -> BuildReport:
    """Build ``manifest``'s targets (all, or ``targets``) as ``buildsys build`` does.

    ``jobs`` None: the executor's default; ``executor`` None: ``buildsys.toml``'s, else local;
    ``pool`` False: no warm worker pool; ``out``/``cache_dir``: as ``--out``/``--cache-dir``;
    ``plugins``: as ``-p`` (``"no:ray"`` blocks one, a module name adds one); ``progress``:
    print the build's progress lines on stderr as the CLI does.

    Returns a ``BuildReport``. When a target fails, raises ``BuildFailed`` (its ``report``
    attribute is the ``BuildReport``: what did succeed) — unless ``keep_going``, which builds
    everything it can and returns the report with the failed targets in it. Bad input raises
    what the CLI reports: ``ManifestError``, ``PlanError``, ``LockMismatch`` ...
    """
    from . import plugins as plugin_mod
    from .builder import BuildOptions, build as run_build
    from .project import Project

    project = Project(manifest, plugin_mod.PluginConfig.from_options(tuple(plugins)), out_dir=out, cache_dir=cache_dir)
    project.pm.hook.buildsys_configure(pluginmanager=project.pm, settings={
        "command": "build", "progress": progress, "quiet": False, "json": False})
    options = BuildOptions(list(targets) if targets else None, jobs, keep_going, locked, frozen, executor, pool=pool)
    try:
        result = run_build(project, options)
    except BuildFailed as exc:
        report = _report(project, getattr(exc, "result", None), list(targets or project.manifest.targets))
        if keep_going and report is not None:
            return report
        exc.report = report
        raise
    return _report(project, result, list(targets or project.manifest.targets))


def _report(project, result, names: list[str]) -> BuildReport | None:
    from .artifacts import read_record
    from .records import BUILT, FAILED, SKIPPED

    if result is None:
        return None
    graph, outcomes = result.graph, result.outcomes
    targets = {}
    for name in names:
        directory = result.directories.get(name)
        if name in graph.refused:
            targets[name] = TargetResult(name, "refused", error=str(graph.refused[name]))
            continue
        ended = [outcomes[n.id] for n in graph.needs(name) if n.id in outcomes]
        failed = next((o for o in ended if o.status in (FAILED, SKIPPED)), None)
        if directory is None or failed is not None:
            status = failed.status if failed is not None else "failed"
            targets[name] = TargetResult(name, status, error=failed.error if failed else "not written")
            continue
        status = "built" if any(o.status == BUILT for o in ended) else "cached"
        targets[name] = TargetResult(name, status, Path(directory), read_record(directory))
    return BuildReport(project.manifest.path, targets, result.lock_changed)


# -- load -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, numpy dtype name and shape (ints for fixed axes, dim
    names for dynamic ones, None where not known). ``ranges`` gives each dim name its allowed
    (low, high) sizes (one pair per profile or bucket)."""

    name: str
    dtype: str | None
    shape: list[int | str | None] | None
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        shape = "?" if self.shape is None else "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name} ({self.dtype or '?'} {shape})"


class Session:
    """A loaded artifact: ``run(inputs) -> {output: array}``; ``inputs``/``outputs`` describe
    them, ``artifact`` is its artifact.json record, ``device`` where it runs (``cpu``/``cuda``),
    ``runner`` the runner's name and ``notes`` what the runner had to work around here."""

    def __init__(self, directory: Path, record: dict, runner: str, call, device: str):
        self.directory = directory
        self.artifact = record
        self.runner = runner
        self.device = device
        self._call = call
        signature = record.get("signature") or {}
        ranges = {name: [(low, high) for low, _, high in _dim(spec).ranges()]
                  for name, spec in (signature.get("dims") or {}).items()}
        self.inputs = [TensorSpec(i["name"], i["dtype"], list(i["shape"]), ranges) for i in signature.get("inputs", [])]
        self.outputs = _outputs(record)

    @property
    def notes(self) -> list[str]:
        """Read when asked: a runner may add one on a later call (e.g. a CUDA graph it could not capture)."""
        return list(getattr(self._call, "notes", ()))

    def __repr__(self) -> str:
        r = self.artifact
        return (f"<buildsys.Session {r.get('name')}/{r.get('version')}/{r.get('target')} {r.get('kind')} "
                f"{r.get('precision')} on {self.device}>")

    def run(self, inputs: Mapping[str, Any] | Any) -> dict[str, Any]:
        """Run the artifact on ``inputs`` (a dict by input name; a bare array when it takes one
        input). Python lists and scalars are converted to the input's dtype; numpy arrays must
        have it. Returns ``{output name: numpy array}``."""
        import numpy as np

        arrays = self._check(inputs)
        results = list(self._call(arrays))
        names = [o.name for o in self.outputs]
        if len(names) != len(results):
            names = names[:len(results)] + [f"output_{k}" for k in range(len(names), len(results))]
        return {name: np.asarray(value) for name, value in zip(names, results)}

    __call__ = run

    def _check(self, inputs) -> list:
        import numpy as np

        expected = ", ".join(i.describe() for i in self.inputs)
        if not isinstance(inputs, Mapping):
            if len(self.inputs) != 1:
                raise InputMismatch(f"pass a dict of {len(self.inputs)} inputs by name; the artifact takes {expected}")
            inputs = {self.inputs[0].name: inputs}
        unknown = [name for name in inputs if name not in {i.name for i in self.inputs}]
        missing = [i.name for i in self.inputs if i.name not in inputs]
        if unknown or missing:
            what = [f"unknown input(s) {', '.join(map(repr, unknown))}"] if unknown else []
            what += [f"missing input(s) {', '.join(map(repr, missing))}"] if missing else []
            raise InputMismatch(f"{'; '.join(what)}: the artifact takes {expected}")
        arrays, seen = [], {}
        for spec in self.inputs:
            value = inputs[spec.name]
            if isinstance(value, np.ndarray) or hasattr(value, "__array__") and hasattr(value, "dtype"):
                array = np.asarray(value)
                if spec.dtype and array.dtype != np.dtype(spec.dtype):
                    raise InputMismatch(f"input '{spec.name}' is {array.dtype}; the artifact expects {spec.describe()}",
                                        hint=f"convert it with .astype(np.{spec.dtype})")
            else:
                try:
                    array = np.asarray(value, dtype=spec.dtype)
                except (TypeError, ValueError) as exc:
                    raise InputMismatch(f"input '{spec.name}' cannot be read as {spec.dtype}: {exc}") from None
            _check_shape(spec, array.shape, seen)
            arrays.append(np.ascontiguousarray(array))
        return arrays


class InputMismatch(BuildsysError, ValueError):
    """Inputs given to ``Session.run`` that the artifact does not take (name, dtype or shape)."""


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], seen: dict[str, tuple[str, int]]) -> None:
    if spec.shape is None:
        return
    if len(shape) != len(spec.shape):
        raise InputMismatch(f"input '{spec.name}' has shape {list(shape)} ({len(shape)} axes); "
                            f"the artifact expects {spec.describe()}")
    for axis, (want, got) in enumerate(zip(spec.shape, shape)):
        if isinstance(want, int) and got != want:
            raise InputMismatch(f"input '{spec.name}' has shape {list(shape)}: axis {axis} must be {want} "
                                f"({spec.describe()})")
        if not isinstance(want, str):
            continue
        ranges = spec.ranges.get(want)
        if ranges and not any(low <= got <= high for low, high in ranges):
            allowed = ", ".join(f"{low}..{high}" if low != high else str(low) for low, high in ranges)
            raise InputMismatch(f"input '{spec.name}' has shape {list(shape)}: axis {axis} ({want}) is {got}, "
                                f"the artifact takes {want} {allowed}")
        first = seen.setdefault(want, (spec.name, got))
        if first[1] != got:
            raise InputMismatch(f"input '{spec.name}' has {want} {got} (axis {axis}) but input '{first[0]}' "
                                f"has {want} {first[1]}: one {want} for all inputs")


def _dim(spec: dict):
    from .manifest import Dim

    return Dim(**spec)


def _outputs(record: dict) -> list[TensorSpec]:
    seen = (record.get("signature") or {}).get("outputs")
    if seen:
        return [TensorSpec(o["name"], o.get("dtype"), o.get("shape")) for o in seen]
    names = (record.get("meta") or {}).get("output_names") or [
        o["name"] for o in (record.get("validation") or {}).get("outputs", [])]
    return [TensorSpec(name, None, None) for name in names]


def load(path_or_manifest: str | Path, target: str | None = None, device: str = "auto", *,
         out: str | Path | None = None, plugins: Sequence[str] = (), program: str | None = None) -> Session:
    """Open a built artifact for inference.

    ``path_or_manifest``: an artifact directory (holding artifact.json: a target's folder under
    the artifact root, a pulled artifact), or a manifest whose built ``target`` to open (needed
    when it has several; ``out`` as ``--out``). ``device``: ``auto`` (the artifact's GPU when its
    tag names one, else the GPU when this host has one, else the CPU), ``cpu`` or ``cuda``.

    Before anything runs: every file is re-hashed against artifact.json (and artifact.json
    against the lockfile, or its provenance.json); a mismatch raises ``VerifyError``. Then the
    hardware tag, CPU microarchitecture, runtime versions and runner are checked for this host:
    ``IncompatibleHardware`` or ``BackendUnavailable`` with the reason. From a manifest, the
    model's ``imports`` (custom operators) are imported first. ``program`` opens one of the
    artifact's companion programs (artifact.json ``meta.programs``: a seq2seq model's
    ``encoder`` beside its decoder step) instead of its primary.
    """
    from . import plugins as plugin_mod
    from .artifacts import check_files, input_artifact, read_record
    from .runnable import refusal, runs_on

    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    config = plugin_mod.PluginConfig.from_options(tuple(plugins))
    path = Path(path_or_manifest)
    if path.is_dir():
        pm = plugin_mod.load(config)
        catalog = plugin_mod.Catalog.collect(pm)
        directory, lock_entry, imports = path, None, None
    else:
        directory, lock_entry, imports, pm, catalog = _from_manifest(path, target, out, config)
    record = read_record(directory)
    problems = check_files(directory, record.get("files", []))
    problems += _record_problems(directory, record, lock_entry)
    if problems:
        raise VerifyError(f"{directory} does not match its checksums; not loading it:\n  " + "\n  ".join(problems),
                          hint="rebuild it, or pull it again from the registry")
    from .project import probe_host

    host = probe_host(pm)
    on = _device(device, record, host)
    problem = refusal(host, catalog.runners, record, on, f"device={device!r}")
    if problem is not None:
        problem.where = f"{record.get('name')}/{record.get('version')}/{record.get('target')}"
        raise problem
    if imports is not None:
        imports()
    runner = catalog.runners[record["kind"]]
    record = program_record(record, program) if program is not None else record
    call = runner.load(input_artifact(directory, record), on)
    return Session(Path(directory), record, runner.name, call, runs_on(call, on))


def program_record(record: dict, program: str) -> dict:
    """The artifact's record as if ``program`` (one of ``meta.programs``) were its primary."""
    from .specs import program_meta

    meta = program_meta(record.get("meta") or {}, program,
                        f"{record.get('name')}/{record.get('version')}/{record.get('target')}")
    chosen = record["meta"]["programs"][program]
    files = [dict(f, role="primary" if f["name"] == meta["primary"] else "data") for f in record["files"]]
    return dict(record, files=files, meta=meta, signature={"inputs": chosen["inputs"], "dims": chosen["dims"]})


def _from_manifest(path: Path, target: str | None, out, config):
    from .artifacts import target_dir
    from .lock import lock_path, read as read_lock
    from .project import Project
    from .usercode import import_modules

    project = Project(path, config, out_dir=out)
    manifest = project.manifest
    if target is None:
        if len(manifest.targets) != 1:
            raise BuildsysError(f"{path.name} has {len(manifest.targets)} targets: name the one to load",
                                hint=f"target= one of {', '.join(manifest.targets)}")
        target = next(iter(manifest.targets))
    if target not in manifest.targets:
        raise BuildsysError(f"unknown target '{target}'", hint=f"targets in {path.name}: {', '.join(manifest.targets)}")
    directory = target_dir(project.out_root, manifest.name, manifest.version, target)
    lock = read_lock(lock_path(manifest.path)) or {}
    entry = lock.get("targets", {}).get(target)
    imports = (lambda: import_modules(manifest.model.imports, manifest.root)) if manifest.model.imports else None
    return directory, entry, imports, project.pm, project.catalog


def _record_problems(directory: Path, record: dict, lock_entry: dict | None) -> list[str]:
    """artifact.json against the lock's digest of it, else against the provenance beside it."""
    from .artifacts import PROVENANCE, artifact_digest
    from .provenance import artifact_ref, check_subject, unsigned_statement

    if lock_entry is not None and lock_entry.get("digest"):
        if artifact_digest(record) != lock_entry["digest"]:
            return [f"{directory / 'artifact.json'}: edited after the build (its digest is not the lockfile's)"]
        return []
    try:
        statement = unsigned_statement(directory)
    except VerifyError as exc:
        return [f"{Path(directory) / PROVENANCE}: unreadable ({exc})"]
    if statement is None:
        return []
    try:
        check_subject(statement, artifact_digest(record), artifact_ref(record))
    except VerifyError:
        return [f"{directory / 'artifact.json'}: edited after the build (its digest is not the one {PROVENANCE} names)"]
    return []


def _device(device: str, record: dict, host) -> str:
    hardware = record.get("hardware", "any")
    if device == "cuda" and not host.gpus:
        raise IncompatibleHardware("device='cuda' but this host has no GPU", hint="load with device='cpu' or 'auto'")
    if device != "auto":
        return device
    return "cuda" if hardware.startswith("cuda") or (hardware == "any" and host.gpus) else "cpu"
