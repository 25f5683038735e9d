"""The hand-off between a build and the worker process that runs one of its stages.

A build writes a ``JobSpec`` to ``job.json`` in the node's work folder; a worker (``run_worker``,
on this machine or, through an executor such as Ray, on another) runs the stage and writes a
``JobResult`` to ``result.json`` beside it. While it runs, the stage's ``ctx.progress`` calls
become progress lines in the worker's log, which executors pass on to the build. These records
are the only format of that exchange: each has one writer (``to_json``) and one reader
(``from_json``), and a version, so a worker never misreads a job written by another buildsys.
Part of the public API, for executor plugins.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import BuildsysError
from .records import JOB_FILE, LOG_FILE, RESULT_FILE, FileRecord  # noqa: F401 (re-exported)
from .specs import InputArtifact

#: Version of the job and result records; a reader refuses any other.
JOB_VERSION = 1
#: Start of a progress line in a worker's log: ``<prefix><done> <total> <message>``.
PROGRESS_PREFIX = "buildsys-progress "
#: Environment variable a pooled worker is started with: its pool's pid (it exits without it).
POOL_PARENT_ENV = "BUILDSYS_POOL_PARENT"


class JobFormatError(BuildsysError):
    """A job or result file that this buildsys cannot read (another version, or damaged)."""


@dataclass(frozen=True)
class JobInput:
    """One input of the stage: a stored artifact (its files by digest, and the local folder
    holding them once fetched), or the model source (no files; the stage loads the model)."""

    kind: str
    precision: str
    hardware: str
    directory: str | None = None
    files: tuple[FileRecord, ...] = ()
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def is_source(self) -> bool:
        return not self.files

    def artifact(self) -> InputArtifact:
        """What the stage receives for this input (its files in ``directory``)."""
        directory = Path(self.directory) if self.directory else None
        files = {f.name: directory / f.name for f in self.files} if directory else {}
        return InputArtifact(self.kind, self.precision, self.hardware, directory, files, self.meta)

    def to_json(self) -> dict:
        return {"kind": self.kind, "precision": self.precision, "hardware": self.hardware,
                "directory": self.directory, "files": [f.to_json() for f in self.files], "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict) -> JobInput:
        return cls(data["kind"], data["precision"], data["hardware"], data["directory"],
                   tuple(FileRecord(**f) for f in data["files"]), data["meta"])


@dataclass(frozen=True)
class JobSource:
    """The model block of the manifest, its folder, and what stages read of the rest.

    ``manifest``: name, version and the ``calibration`` and ``validation`` blocks (see
    ``StageContext.manifest``). ``files``: empty when the job runs where the manifest is; for
    a job shipped to another machine, the model's source files by digest, named relative to one
    folder, with ``root`` the manifest's folder relative to that same folder.
    """

    model: dict
    root: str
    manifest: dict
    files: tuple[FileRecord, ...] = ()

    def to_json(self) -> dict:
        return {"model": self.model, "root": self.root, "manifest": self.manifest,
                "files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, data: dict) -> JobSource:
        return cls(data["model"], data["root"], data["manifest"], tuple(FileRecord(**f) for f in data["files"]))


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to run one node's stage.

    ``key`` is the node's action key; ``out_dir`` where the stage writes (None until the
    machine that runs it chooses); ``persistent`` the folder of state kept across builds
    (``StageContext.persistent_file``); ``plugins`` the ``PluginConfig`` to load, as JSON, so
    the worker loads the same plugins as the build.
    """

    node: str
    stage: str
    options: dict
    key: str
    targets: tuple[str, ...]
    hardware: str
    precision: str
    out_dir: str | None
    inputs: tuple[JobInput, ...]
    source: JobSource
    plugins: dict
    persistent: str | None = None

    def to_json(self) -> dict:
        return {"version": JOB_VERSION, "node": self.node, "stage": self.stage, "options": self.options,
                "key": self.key, "targets": list(self.targets), "hardware": self.hardware,
                "precision": self.precision, "out_dir": self.out_dir,
                "inputs": [i.to_json() for i in self.inputs], "source": self.source.to_json(),
                "plugins": self.plugins, "persistent": self.persistent}

    @classmethod
    def from_json(cls, data: dict) -> JobSpec:
        _check_version(data, "job")
        return cls(data["node"], data["stage"], data["options"], data["key"], tuple(data["targets"]),
                   data["hardware"], data["precision"], data["out_dir"],
                   tuple(JobInput.from_json(i) for i in data["inputs"]), JobSource.from_json(data["source"]),
                   data["plugins"], data["persistent"])

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def read(cls, path: Path) -> JobSpec:
        return _read(path, cls.from_json, "job")


#: ``JobResult.error_type`` values that mean the manifest, not the build, is wrong (exit 2).
MANIFEST_ERRORS = frozenset({"ManifestError", "ManifestErrors"})


@dataclass(frozen=True)
class JobResult:
    """How the stage ended: ``ok`` with its metadata and run time, or ``error`` (one line for the
    user; ``error_type`` the exception's class; ``traceback`` for the log when it was a bug).
    ``built_on`` names the machine an executor ran it on, when that is not this one."""

    ok: bool
    meta: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    built_on: dict | None = None

    @classmethod
    def failure(cls, error: str) -> JobResult:
        return cls(ok=False, error=error)

    @classmethod
    def died(cls, returncode: int) -> JobResult:
        """The result of a worker that exited without writing one."""
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            return cls.failure(f"worker process died with {name} (the backend crashed)")
        return cls.failure(f"worker process exited with status {returncode} and no result")

    def to_json(self) -> dict:
        return {"version": JOB_VERSION, "ok": self.ok, "meta": self.meta, "seconds": self.seconds,
                "error": self.error, "error_type": self.error_type, "traceback": self.traceback,
                "built_on": self.built_on}

    @classmethod
    def from_json(cls, data: dict) -> JobResult:
        _check_version(data, "result")
        return cls(data["ok"], data["meta"], data["seconds"], data["error"], data["error_type"],
                   data["traceback"], data["built_on"])

    def write(self, path: Path) -> None:
        """Write atomically: a reader sees the whole result or none."""
        tmp = Path(path).with_name(Path(path).name + ".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> JobResult:
        return _read(path, cls.from_json, "result")


def _check_version(data: dict, what: str) -> None:
    if data.get("version") != JOB_VERSION:
        raise JobFormatError(f"the {what} file is version {data.get('version')!r}; this buildsys reads "
                             f"version {JOB_VERSION}", hint="run the build and its workers with one buildsys release")


def _read(path: Path, parse, what: str):
    try:
        return parse(json.loads(Path(path).read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise JobFormatError(f"cannot read the {what} file {path}: {type(exc).__name__}: {exc}") from None


# -- the pooled worker's pipe ----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRequest:
    """One line on a pooled worker's stdin: run the job file ``job`` (its result and log go
    beside it, as for a one-job worker)."""

    job: str

    def to_line(self) -> bytes:
        return (json.dumps({"version": JOB_VERSION, "job": self.job}) + "\n").encode()

    @classmethod
    def from_line(cls, line: str) -> WorkerRequest:
        data = json.loads(line)
        _check_version(data, "worker request")
        return cls(data["job"])


@dataclass(frozen=True)
class WorkerReply:
    """A pooled worker's answer once a job's result is written: which job, the worker's pid,
    its resident memory now (MB), ``clean``: False when the process could not be put back as a
    fresh one would be (the pool then retires it), and ``imported``: the top-level modules it
    has imported (so a stage requiring onnxruntime goes to the worker that already loaded it)."""

    job: str
    pid: int
    rss_mb: float
    clean: bool = True
    imported: tuple[str, ...] = ()

    def to_line(self) -> str:
        return json.dumps({"version": JOB_VERSION, "job": self.job, "pid": self.pid, "rss_mb": self.rss_mb,
                           "clean": self.clean, "imported": list(self.imported)}) + "\n"

    @classmethod
    def from_line(cls, line: bytes | str) -> WorkerReply:
        data = json.loads(line)
        _check_version(data, "worker reply")
        return cls(data["job"], data["pid"], data["rss_mb"], data["clean"], tuple(data["imported"]))


# -- progress lines ------------------------------------------------------------------------------


class Progress(NamedTuple):
    done: float
    total: float
    message: str


def progress_line(done: float, total: float, message: str = "") -> str:
    """The line a worker writes for ``ctx.progress(done, total, message)``."""
    return f"{PROGRESS_PREFIX}{done} {total} {' '.join(message.split())}"


def parse_progress(line: str) -> Progress | None:
    """The progress a log line reports, or None when it is not a well-formed progress line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    parts = line[len(PROGRESS_PREFIX):].rstrip("\n").split(" ", 2)
    try:
        return Progress(float(parts[0]), float(parts[1]), parts[2] if len(parts) > 2 else "")
    except (ValueError, IndexError):
        return None


def collect_result(job_file: Path, returncode: int) -> JobResult:
    """The result a worker left beside ``job_file``, or why it left none (``returncode`` is the
    worker process's exit status; negative: killed by that signal)."""
    path = Path(job_file).with_name(RESULT_FILE)
    if returncode != 0 or not path.exists():
        return JobResult.died(returncode)
    return JobResult.read(path)
