"""The content-addressed store and action keys.

Layout under the store root (default ``artifacts/.cache``)::

    cas/ab/abcdef...        file blobs, named by their sha256, read-only
    ac/12/1234...json       action entries: action key -> output files + metadata
    tmp/                    stage work folders (a dead process's are removed by ``gc``)
    locks/                  one flock per action key being built
    persistent/             state stages keep across builds (``StageContext.persistent_file``),
                            e.g. TensorRT timing caches; in no action key, never an artifact

An entry is written last, atomically, after its blobs are fsynced: a crash at any moment
leaves only unreferenced blobs or temp folders, never a visible partial entry.

A ``Store`` may have a ``SharedStore`` behind it (``build --store URL``): the same ``cas/`` and
``ac/`` layout at an fsspec URL several machines reach (a shared filesystem path, ``file://``,
``s3://`` ...). A local miss is then looked up there (blobs are downloaded and verified), and a
commit is published there, so a node built anywhere is built once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CacheError
from .fsutil import FileLock, atomic_write, fsync_dir, remove_stale, staging_dir
from .hashing import canonical, sha256_file, sha256_text
from .records import FileRecord

if TYPE_CHECKING:
    from .shared_store import SharedStore


@dataclass(frozen=True)
class Entry:
    """A stored stage output: its files, the metadata the stage returned, and its digest."""

    key: str
    files: tuple[FileRecord, ...]
    meta: dict = field(hash=False, compare=False)
    seconds: float = 0.0

    @property
    def digest(self) -> str:
        """Digest of the output tree; downstream action keys are computed from it."""
        return tree_digest(self.files)


def tree_digest(files) -> str:
    return sha256_text(canonical(sorted([f.name, f.sha256, f.size] for f in files)))


@dataclass(frozen=True)
class Action:
    """Everything that determines a stage's output: the stage and its version, its resolved
    options, the digests of its inputs, the tool versions it declares (and the plugins extending
    it), the hardware tag and precision. The lockfile records each node's action as
    ``to_json()`` gives it, and the action key is the hash of that same record, so the two
    cannot drift (DVC's stage hash over its serialised stage)."""

    stage: str
    stage_version: int
    options: dict = field(hash=False)
    inputs: tuple[str, ...]
    tools: dict = field(hash=False)
    hardware: str
    precision: str

    def to_json(self) -> dict:
        return {"stage": self.stage, "stage_version": self.stage_version, "options": self.options,
                "inputs": list(self.inputs), "tools": dict(sorted(self.tools.items())),
                "hardware": self.hardware, "precision": self.precision}

    @property
    def key(self) -> str:
        """sha256 over the canonical form of ``to_json()``."""
        return sha256_text(canonical(self.to_json()))


class Store:
    def __init__(self, root: Path, shared: SharedStore | None = None):
        self.root = Path(root)
        self.shared = shared
        #: key -> what was wrong with an entry ``lookup`` evicted (the build says it once)
        self.evicted: dict[str, str] = {}

    # -- paths ---------------------------------------------------------------------------

    def blob_path(self, sha: str) -> Path:
        return self.root / "cas" / sha[:2] / sha

    def entry_path(self, key: str) -> Path:
        return self.root / "ac" / key[:2] / f"{key}.json"

    @property
    def persistent_root(self) -> Path:
        """Where ``StageContext.persistent_file`` keeps stage state across builds."""
        return self.root / "persistent"

    # -- read ----------------------------------------------------------------------------

    def lookup(self, key: str) -> Entry | None:
        """The entry for ``key`` if it and all its blobs are present (here, or in the shared
        store, from which they are then copied here), else None."""
        entry = self._lookup_local(key)
        if entry is None and self.shared is not None:
            entry = self._fetch_shared(key)
        return entry

    def _lookup_local(self, key: str) -> Entry | None:
        entry = self.peek(key)
        if entry is None or not all(self.blob_path(f.sha256).is_file() for f in entry.files):
            return None
        damaged = [f for f in entry.files if self.file_digest(self.blob_path(f.sha256)) != f.sha256]
        if damaged:
            self._evict(entry, damaged)
            return None
        return entry

    def peek(self, key: str) -> Entry | None:
        """The entry recorded for ``key``, without looking at its blobs (``verify``, ``gc``)."""
        path = self.entry_path(key)
        try:
            data = json.loads(path.read_text())
            files = tuple(FileRecord(**f) for f in data["files"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(f"corrupt cache entry {path}: {exc}",
                             hint="run 'buildsys gc' or delete that file") from None
        return Entry(key=key, files=files, meta=data.get("meta", {}), seconds=data.get("seconds", 0.0))

    def _evict(self, entry: Entry, damaged: list[FileRecord]) -> None:
        """Drop an entry whose blobs no longer hash to their names (and those blobs): the node
        is rebuilt, and its new output is stored in their place."""
        for record in damaged:
            self.blob_path(record.sha256).unlink(missing_ok=True)
        self.entry_path(entry.key).unlink(missing_ok=True)
        names = ", ".join(f"{r.name} ({r.sha256[:12]}…)" for r in damaged)
        self.evicted[entry.key] = (f"the cache held a damaged copy of {names} (its bytes no longer hash to "
                                   "their sha256): evicted and rebuilt")

    def file_digest(self, path: Path) -> str:
        """sha256 of a file (weights and blobs can be GBs), remembered by (size, mtime, ctime,
        inode): an edit in place that restores the mtime still changes the ctime."""
        stat = Path(path).stat()
        memo = self.root / "stat" / sha256_text(str(Path(path).resolve()))[:32]
        stamp = f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"
        try:
            known_stamp, digest = memo.read_text().split()
            if known_stamp == stamp:
                return digest
        except (OSError, ValueError):
            pass
        digest = sha256_file(Path(path))
        if max(stat.st_mtime_ns, stat.st_ctime_ns) < time.time_ns() - 2_000_000_000:
            atomic_write(memo, f"{stamp} {digest}\n")  # not for a file that may still change within its tick
        return digest

    def lock(self, key: str) -> FileLock:
        """Held while building ``key``, so two builds sharing this store build it once."""
        return FileLock(self.root / "locks" / f"{key[:16]}.lock")

    def usage(self, collecting: bool = False) -> FileLock:
        """The store-wide lock: every build holds it shared from its first lookup until its
        artifacts and lock are written; ``gc`` holds it exclusively, so it never removes what
        a running build has looked up or written but no lockfile references yet."""
        return FileLock(self.root / "locks" / "store.rwlock", mode="write" if collecting else "read")

    # -- write ---------------------------------------------------------------------------

    def workdir(self, label: str) -> Path:
        return staging_dir(self.root / "tmp", label.replace("/", "_"))

    def commit(self, key: str, workdir: Path, meta: dict, seconds: float) -> Entry:
        """Move every file of ``workdir`` into the store and record the entry; remove workdir."""
        records = []
        for path in sorted(p for p in workdir.rglob("*") if p.is_file()):
            records.append(self._store_blob(path, path.relative_to(workdir).as_posix()))
        if not records:
            raise CacheError("the stage wrote no files", hint="a stage must write its output into ctx.out_dir")
        entry = Entry(key=key, files=tuple(records), meta=meta, seconds=seconds)
        record = {"key": key, "files": [r.to_json() for r in records], "meta": meta,
                  "seconds": round(seconds, 3), "created": time.time()}
        atomic_write(self.entry_path(key), json.dumps(record, indent=1, sort_keys=True))
        shutil.rmtree(workdir, ignore_errors=True)
        if self.shared is not None:
            self.shared.publish(record, self.blob_path)
        return entry

    def _fetch_shared(self, key: str) -> Entry | None:
        """Copy ``key``'s entry and blobs from the shared store, each blob verified; None if absent."""
        data = self.shared.get_entry(key)
        if data is None:
            return None
        files = tuple(FileRecord(**f) for f in data["files"])
        for record in files:
            if self.blob_path(record.sha256).is_file():
                continue
            tmp = self.root / "tmp" / f".fetch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            if not self.shared.download(record.sha256, record.size, tmp):
                return None  # an entry whose blob is gone: a miss, rebuilt and republished
            self._place_blob(tmp, record.sha256)
        atomic_write(self.entry_path(key), json.dumps(dict(data, key=key), indent=1, sort_keys=True))
        return Entry(key=key, files=files, meta=data.get("meta", {}), seconds=data.get("seconds", 0.0))

    def _store_blob(self, path: Path, name: str) -> FileRecord:
        sha, size = sha256_file(path), path.stat().st_size
        self._place_blob(path, sha)
        return FileRecord(name=name, sha256=sha, size=size)

    def _place_blob(self, path: Path, sha: str) -> None:
        """Move the file ``path`` (whose sha256 is ``sha``) into ``cas/``, fsynced, read-only."""
        blob = self.blob_path(sha)
        if blob.exists() and self.file_digest(blob) == sha:
            Path(path).unlink(missing_ok=True)
            return
        blob.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(path, 0o444)
        os.replace(path, blob)
        fsync_dir(blob.parent)

    def materialize(self, entry: Entry, dest: Path, rename: dict[str, str]) -> list[FileRecord]:
        """Copy ``entry``'s files into ``dest`` (renamed per ``rename``), hashing each as it is
        copied; return final records. A blob damaged since its lookup is evicted and the copy
        refused (``CacheError``), so a damaged byte never reaches an artifact."""
        out = []
        for record in entry.files:
            name = rename.get(record.name, record.name)
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if _copy_hashing(self.blob_path(record.sha256), target) != record.sha256:
                target.unlink(missing_ok=True)
                self._evict(entry, [record])
                raise CacheError(f"cache blob {record.sha256[:16]}… ({record.name}) changed during the build",
                                 hint="it was evicted; run the build again to rebuild it")
            out.append(FileRecord(name=name, sha256=record.sha256, size=record.size))
        return out

    # -- gc ------------------------------------------------------------------------------

    def entries(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "ac").glob("*/*.json"))

    def gc(self, keep: set[str], dry_run: bool = False) -> dict[str, int]:
        """Remove entries not in ``keep``, blobs no kept entry references, dead temp folders."""
        removed = {"entries": 0, "blobs": 0, "bytes": 0, "tmp": 0}
        live_blobs = set()
        for key in self.entries():
            entry = self.peek(key)
            if key in keep and entry is not None:
                live_blobs.update(f.sha256 for f in entry.files)
            else:
                removed["entries"] += 1
                if not dry_run:
                    self.entry_path(key).unlink(missing_ok=True)
        for blob in (self.root / "cas").glob("*/*"):
            if blob.name not in live_blobs:
                removed["blobs"] += 1
                removed["bytes"] += blob.stat().st_size
                if not dry_run:
                    blob.unlink(missing_ok=True)
        removed["tmp"] += remove_stale([*(self.root / "tmp").glob(".*"), *(self.root / "ac").glob("*/.*"),
                                        *(self.root / "stat").glob(".*")], dry_run)
        return removed


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and return the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()
