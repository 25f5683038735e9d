"""The timing cache: kept per flavour, version and hardware across builds, never half-written.

TensorRT records kernel timings in a timing cache so that a later build can skip measuring
them. buildsys keeps one per (flavour, version, hardware tag) in the store's persistent area
(``StageContext.persistent_file``), outside every action key: it may make a build faster, never
different in what it must do. The file is TensorRT's serialized cache behind a header and a
sha256, so a truncated or altered file is a clear error instead of TensorRT's silent "returning
an empty timing cache"; it is replaced atomically, and merged with what a parallel build wrote
meanwhile, under the persistent file's lock.

TensorRT-RTX 1.7 documents timing-cache operations as no-ops ("Deprecated in TensorRT-RTX 1.2");
its serialized cache holds no timing entries. The same code serves enterprise TensorRT, where
the cache does shorten builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path

from buildsys import StageFailed

NAMESPACE = "tensorrt-timing-cache"
MAGIC = b"buildsys-tensorrt-timing-cache 1\n"
_DIGEST = 64  # hex sha256


class TimingCacheError(StageFailed):
    """The kept timing cache cannot be read back."""


def key(flavour: str, version: str, hardware: str) -> str:
    """The file name of the cache for one flavour, version and hardware tag."""
    return f"{flavour}-{version}-{hardware}.cache"


def read(path: Path) -> bytes:
    """The serialized cache in ``path`` (b"" when there is none yet); ``TimingCacheError`` if corrupt."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return b""
    if not data.startswith(MAGIC):
        raise _corrupt(path, "it does not start with the buildsys timing-cache header")
    digest = data[len(MAGIC):len(MAGIC) + _DIGEST].decode("ascii", "replace")
    payload = data[len(MAGIC) + _DIGEST + 1:]
    if hashlib.sha256(payload).hexdigest() != digest:
        raise _corrupt(path, f"its sha256 does not match its {len(payload)} bytes (truncated or altered)")
    return payload


def _corrupt(path: Path, why: str) -> TimingCacheError:
    return TimingCacheError(f"the timing cache {path} is corrupt: {why}",
                            hint="delete that file (the next build starts a fresh cache), or build with "
                                 "options: {tensorrt.plan: {timing_cache: false}}")


def write(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload`` atomically: readers see the old file or the new, whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def quiet():
    """TensorRT-RTX warns that its timing-cache calls are deprecated no-ops; the calls serve
    enterprise TensorRT too, so the warning is expected here and kept out of the node log."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class Session:
    """One build's use of a kept cache: load before building, merge and save after.

    ``open_path`` returns a context manager yielding the cache file's path while holding its
    lock (``lambda: ctx.persistent_file(NAMESPACE, key)`` in a stage).
    """

    def __init__(self, open_path):
        self.open_path = open_path
        self.loaded = b""
        self.cache = None
        self.config = None

    def attach(self, config) -> dict:
        """Load the kept cache (under its lock) and attach it to the builder ``config``."""
        with self.open_path() as path:
            self.loaded = read(path)
            name = path.name
        self.config = config
        with quiet():
            self.cache = config.create_timing_cache(self.loaded)
            if not config.set_timing_cache(self.cache, False):
                raise TimingCacheError(f"TensorRT refused the timing cache {name}",
                                       hint="delete it, or build with options: {tensorrt.plan: {timing_cache: false}}")
        return {"used": True, "file": name, "loaded_bytes": len(self.loaded)}

    def save(self) -> dict:
        """Merge what a parallel build saved meanwhile, then replace the file (under its lock)."""
        with self.open_path() as path:
            current = read(path)
            with quiet():
                if current and current != self.loaded:
                    self.cache.combine(self.config.create_timing_cache(current), False)
                payload = bytes(self.cache.serialize())
                entries = len(self.cache.queryKeys())
            write(path, payload)
        return {"saved_bytes": len(payload), "entries": entries}
