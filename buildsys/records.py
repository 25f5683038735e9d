"""Records the core passes between its parts and to plugins: plain frozen data, no behaviour
beyond (de)serialising. Part of the public API where ``buildsys.__all__`` names them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

#: How a node ended (``NodeOutcome.status``); the first three are success.
BUILT, CACHED, RESOLVED, FAILED, SKIPPED = "built", "cached", "resolved", "failed", "skipped"
SETTLED_OK = (BUILT, CACHED, RESOLVED)

#: Metadata key of a cache entry built by an executor elsewhere: that machine's facts.
BUILT_ON = "built_on"

#: Names in a job's work folder: what the build asks, what the worker answers, what it printed.
JOB_FILE, RESULT_FILE, LOG_FILE = "job.json", "result.json", "worker.log"


@dataclass(frozen=True)
class FileRecord:
    """One stored file: its name (relative, POSIX), sha256 and size in bytes."""

    name: str
    sha256: str
    size: int

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


@dataclass
class NodeOutcome:
    """How a node ended. ``error`` is one line for failed and skipped nodes; ``warnings`` are
    what the stage flagged for the user (``"warnings"`` in its metadata), built or cached.
    ``bad_input``: the stage failed with a ``ManifestError`` (the manifest, not the build, is
    wrong: exit 2)."""

    status: str
    seconds: float = 0.0
    error: str | None = None
    log: Path | None = None
    warnings: tuple[str, ...] = ()
    bad_input: bool = False

    @property
    def ok(self) -> bool:
        return self.status in SETTLED_OK


@dataclass
class Job:
    """A node that must run: the job file a worker reads, and the folder it works in.

    What the stage declares about how it runs, for executors: ``requires`` (the distributions
    it imports: workers that have them imported suit it best), ``isolated`` (it must not share
    a process) and ``timeout`` (seconds, or None)."""

    node_id: str
    workdir: Path
    job_file: Path
    started: float = field(default_factory=time.perf_counter)
    requires: tuple[str, ...] = ()
    isolated: bool = False
    timeout: float | None = None

    @property
    def result_file(self) -> Path:
        """Where the worker's ``JobResult`` is read from by ``Driver.finish``."""
        return self.job_file.with_name(RESULT_FILE)

    @property
    def log_file(self) -> Path:
        """The worker's output (kept when the node fails)."""
        return self.job_file.with_name(LOG_FILE)


class Wait:
    """``Driver.prepare`` returns this when another build holds the node's lock: ask again later."""
