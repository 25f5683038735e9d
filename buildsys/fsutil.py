"""Crash-safe file operations: nothing half-written is ever visible under its final name."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_safe_name(value: str, what: str) -> str:
    """Refuse names that could escape a directory: ``..``, ``/``, a leading dot, spaces."""
    if not SAFE_NAME.match(value) or ".." in value:
        raise ValueError(f"{what} '{value}' is not a safe name: use letters, digits, '.', '_', "
                         "'+', '-', starting with a letter or digit, no '..'")
    return value


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: lockfiles and artifact.json are for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


def replace_dir(staged: Path, final: Path) -> None:
    """Swap a fully written ``staged`` directory in at ``final`` (two renames, never partial)."""
    fsync_tree(staged)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staged, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class FileLock:
    """A lock on a file through the portable ``filelock`` package; the OS drops it if the process
    dies, even on SIGKILL. ``mode`` is ``exclusive`` (``flock``/``LockFileEx``), or ``read`` /
    ``write`` on a reader-writer lock (an SQLite database file: many readers, or one writer).
    Locks of the plain and the reader-writer kind on one path do not exclude each other: give
    each path one kind."""

    def __init__(self, path: Path, mode: str = "exclusive"):
        if mode not in ("exclusive", "read", "write"):
            raise ValueError(f"lock mode {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self._held = None

    def try_acquire(self) -> bool:
        return self._acquire(blocking=False)

    def acquire(self, on_wait=None) -> None:
        if self._acquire(blocking=False):
            return
        if on_wait is not None:
            on_wait()
        self._acquire(blocking=True)

    def release(self) -> None:
        if self._held is not None:
            lock, self._held = self._held, None
            lock.release()
            if self.mode != "exclusive":
                lock.close()

    def _acquire(self, blocking: bool) -> bool:
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        timeout = -1 if blocking else 0
        try:
            if self.mode == "exclusive":
                # kept on disk, and never a "soft" lock file a killed process would leave behind
                lock = filelock.FileLock(self.path, thread_local=False, fallback_to_soft=False,
                                         preserve_lock_file=True)
                lock.acquire(timeout=timeout, blocking=blocking)
            else:
                lock = filelock.ReadWriteLock(self.path, is_singleton=False)
                take = lock.acquire_read if self.mode == "read" else lock.acquire_write
                try:
                    take(timeout=timeout, blocking=blocking)
                except BaseException:
                    lock.close()
                    raise
        except filelock.Timeout:
            return False
        self._held = lock
        return True


@contextlib.contextmanager
def file_lock(path: Path, on_wait=None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; ``on_wait`` is called if it must wait."""
    lock = FileLock(path)
    lock.acquire(on_wait)
    try:
        yield
    finally:
        lock.release()


def staging_dir(parent: Path, name: str) -> Path:
    """A fresh hidden folder beside where ``name`` will live; its name carries our pid for gc."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-{os.getpid()}-", dir=parent))
    # mkdtemp makes 0700; the folder becomes an artifact directory others may need to read.
    os.chmod(path, 0o777 & ~_umask())
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def stale_temp(path: Path) -> bool:
    """True for a temp file/folder (``.x.tmp-PID-...``, ``.x.old-PID``) of a dead process."""
    m = re.fullmatch(r"\..*\.(?:tmp-|old-)(\d+)(?:-.*)?", Path(path).name)
    return m is not None and not pid_alive(int(m.group(1)))


def remove_stale(paths, dry_run: bool = False) -> int:
    """Remove the ``stale_temp`` ones of ``paths``; return how many there were."""
    removed = 0
    for path in paths:
        if stale_temp(path):
            removed += 1
            if not dry_run:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
    return removed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
