"""What every registry needs around its own client: bounded retries of transient failures,
pulls staged beside their destination and verified before they appear, streamed writes that
hash as they go, and the immutability rule.

The builtin file registry uses these, and registry plugins reach them through
``buildsys.__all__`` (``Retry``, ``staged_pull``, ``listed_files``, ``safe_member``,
``check_pin``, ``write_stream``, ``check_same_digest``). A registry records each target's
artifact digest (``buildsys.artifacts.artifact_digest``, the sha256 of its canonical
artifact.json) when it publishes, and a pull checks it twice: the artifact.json it fetches
first (``listed_files``), and the whole folder before it appears (``staged_pull``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, TypeVar

from .artifacts import artifact_digest, check_files, read_record
from .errors import ImmutableVersion, RegistryError, RegistryUnavailable, VerifyError
from .fsutil import check_safe_name, replace_dir, staging_dir

T = TypeVar("T")

RETRIES_ENV = "BUILDSYS_REGISTRY_RETRIES"


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff for calls that raise ``RegistryUnavailable``.

    ``attempts`` tries in all (1: no retry). Before try n+1 it sleeps ``min(cap, base * 2**(n-1))``
    times a random factor in [0.5, 1], so clients that failed together do not retry in step;
    the defaults give up after about 1.75 s of sleeping. Any other error propagates at once: a
    refusal, a wrong password or a missing version is not made right by asking again. Only
    idempotent operations may be wrapped (an upload of content-addressed bytes, a GET, a PUT of
    the same manifest); a call that creates something must look for it before trying again.
    """

    attempts: int = 4
    base: float = 0.25
    cap: float = 4.0
    #: the longest a registry's ``Retry-After`` may make one wait (a registry asking for an hour
    #: is treated as down rather than waited on)
    max_wait: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> Retry:
        """The default policy, with ``attempts`` from ``BUILDSYS_REGISTRY_RETRIES`` (tries after the first)."""
        value = os.environ.get(RETRIES_ENV, "").strip()
        if not value:
            return cls()
        if not value.isdigit() or int(value) > 20:
            raise RegistryError(f"{RETRIES_ENV}={value!r} is not a number of retries from 0 to 20")
        return cls(attempts=int(value) + 1)

    def delay(self, attempt: int) -> float:
        """Seconds to sleep after failed try number ``attempt`` (1-based)."""
        return min(self.cap, self.base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def call(self, fn: Callable[[], T], what: str, sleep: Callable[[float], None] | None = None) -> T:
        """Return ``fn()``, retrying it while it raises ``RegistryUnavailable``; before a retry it
        waits the backoff, or longer when the registry said so (``Retry-After``, up to ``max_wait``)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except RegistryUnavailable as exc:
                if attempt == self.attempts:
                    tries = f"after {attempt} attempts" if attempt > 1 else "(no retries)"
                    hint = f"is the registry up and the URL right? --retries or {RETRIES_ENV} sets the retries"
                    raise RegistryUnavailable(f"{what} failed {tries}: {exc.message}", where=exc.where,
                                              hint=exc.hint or hint) from exc
                asked = min(exc.retry_after or 0.0, self.max_wait)
                (sleep or self.sleep)(max(self.delay(attempt), asked))
        raise AssertionError("unreachable")


def retry_after(value: str | None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delay-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def check_same_digest(ref, existing_digest: str, where: str) -> None:
    """Refuse to publish ``ref`` over a published copy with another artifact digest.

    Returns quietly when the digests are equal (the publish is then a no-op); raises
    ``ImmutableVersion`` naming both digests otherwise.
    """
    if existing_digest != ref.digest:
        raise ImmutableVersion(
            f"{ref} is already published with digest {existing_digest[:16]}…, this one is {ref.digest[:16]}…",
            where=where, hint="versions are immutable: bump the manifest's version")


def write_stream(chunks: Iterable[bytes], path: Path, sha256: str | None = None) -> tuple[str, int]:
    """Write ``chunks`` to ``path`` while hashing them; return ``(sha256 hex, size)``.

    With ``sha256`` given, a mismatch removes the file and raises ``VerifyError``: a download
    is checked as it streams, without a second read and without holding it in memory.
    """
    digest, size = hashlib.sha256(), 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as f:
            for chunk in chunks:
                digest.update(chunk)
                f.write(chunk)
                size += len(chunk)
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise VerifyError(f"{path.name}: received bytes hash to sha256 {actual[:16]}…, "
                              f"expected {sha256[:16]}…", hint="the registry's copy is damaged or was altered; republish it")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return actual, size


@contextlib.contextmanager
def staged_pull(dest: Path, ref) -> Iterator[Path]:
    """Pull ``ref`` into ``dest/<target>`` through a hidden staging folder.

    Yields an empty folder beside ``dest/<target>``: write the pulled files and artifact.json
    into it. On a clean exit the folder is verified (``verify_pulled``) and swapped in whole;
    on any error it is removed, and so is ``dest`` if this call created it, so a failed pull
    leaves nothing behind.
    """
    for value, what in ((ref.name, "name"), (ref.version, "version"), (ref.target, "target")):
        try:
            check_safe_name(value, what)
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
    dest = Path(dest)
    created = not dest.exists()
    staged = staging_dir(dest, ref.target)
    try:
        yield staged
        verify_pulled(staged, ref)
        replace_dir(staged, dest / ref.target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                dest.rmdir()
        raise


def verify_pulled(directory: Path, ref) -> None:
    """Check a pulled folder: it is ``ref``, every file matches artifact.json, nothing else is
    there, and (when ``ref.digest`` is set) artifact.json has the digest the registry recorded."""
    record = read_record(directory)
    wrong = [f"{key} '{record.get(key)}'" for key in ("name", "version", "target")
             if record.get(key) != getattr(ref, key)]
    if wrong:
        raise VerifyError(f"the registry returned another artifact for {ref}: {', '.join(wrong)}",
                          hint="the registry's metadata and content disagree; republish")
    check_digest(record, ref, "the pulled artifact.json")
    files = record.get("files", [])
    problems = [p.replace(f"{directory}{os.sep}", "") for p in check_files(directory, files)]
    if problems:
        raise VerifyError("pulled files do not match their checksums:\n  " + "\n  ".join(problems),
                          where=str(ref), hint="the registry copy is damaged; republish it")


def check_digest(record: dict, ref, what: str) -> None:
    """Raise ``VerifyError`` unless ``record`` has the artifact digest ``ref.digest`` (when set)."""
    digest = artifact_digest(record)
    if ref.digest and digest != ref.digest:
        raise VerifyError(f"{ref}: {what} has digest {digest[:23]}…, the registry recorded {ref.digest[:23]}…",
                          hint="artifact.json was altered in the registry; republish it")


def check_pin(requested, held) -> None:
    """Refuse before anything is fetched when the caller pinned a digest (``pull --digest``,
    ``--lock``) and the registry holds another one for that name/version/target."""
    if requested.digest and requested.digest != held.digest:
        raise VerifyError(f"{requested}: pinned to digest {requested.digest[:23]}…, the registry holds "
                          f"{held.digest[:23] or 'no digest'}…",
                          hint="the published artifact is not the one you pinned: check the digest or the lock")


def safe_member(name: object, ref) -> str:
    """``name`` if it is a relative POSIX path that stays inside the target folder; else
    ``VerifyError``. The one check every registry applies to names its metadata lists."""
    path = PurePosixPath(name) if isinstance(name, str) else None
    if (path is None or not name or "\\" in name or "\0" in name or path.is_absolute()
            or ".." in path.parts or path.parts[0].startswith(".")):
        raise VerifyError(f"{ref}: the registry's metadata lists an unsafe file name {name!r}",
                          hint="a name must stay inside the target folder; the registry copy is damaged or forged")
    return name


def fetched_record(path: Path) -> dict:
    """The artifact.json a registry pull fetched, parsed; ``VerifyError`` when it is not JSON.
    (``listed_files`` then checks it against the recorded digest.)"""
    try:
        return json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise VerifyError(f"the registry's artifact.json is unreadable: {exc}",
                          hint="the registry copy is damaged; republish it") from None


def listed_files(record: dict, ref) -> list[dict]:
    """The files a registry's artifact.json lists, checked before anything large is fetched:
    it has the artifact digest ``ref.digest`` (when set) and every name stays inside the target
    folder (``safe_member``).

    Raises ``VerifyError``. Fetch artifact.json first, pass its record here, then fetch exactly
    these files.
    """
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and {"name", "sha256", "size"} <= set(f)
                                              for f in files):
        raise VerifyError(f"{ref}: the registry's artifact.json has no valid file list",
                          hint="the registry copy is damaged; republish it")
    check_digest(record, ref, "the registry's artifact.json")
    for f in files:
        safe_member(f["name"], ref)
    return files
