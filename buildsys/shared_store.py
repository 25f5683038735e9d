"""A content-addressed store that several machines share, behind the local one (``--store URL``).

Same ``cas/`` and ``ac/`` layout as ``buildsys.cache.Store``, at any fsspec URL. Part of the
public API (``buildsys.SharedStore``), for executor plugins that move artifacts through it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from .errors import CacheError


class SharedStore:
    """A content-addressed store at an fsspec URL that several machines share.

    ``url`` is a path every machine mounts (``/mnt/shared/cache``), a ``file://`` URL, or any
    URL an installed fsspec backend opens (``s3://bucket/prefix`` with s3fs, ``gs://`` with
    gcsfs ...). The layout is the local store's ``cas/`` and ``ac/``. Every write goes to a
    temp name under ``tmp/`` and is moved into place, so no reader sees half a blob; an entry is
    written after its blobs, and the first entry written for a key wins (a nondeterministic
    stage built twice keeps the output others may already use). Every download is verified
    against the sha256 and size it was asked for.
    """

    def __init__(self, url: str):
        self.url = str(url).rstrip("/") or "/"
        self._opened = None

    def __repr__(self) -> str:
        return f"SharedStore({self.url!r})"

    # -- paths ---------------------------------------------------------------------------

    @property
    def _fs(self):
        if self._opened is None:
            self._opened = _open_fs(self.url)
        return self._opened

    def _path(self, *parts: str) -> str:
        fs, root = self._fs
        return "/".join([root.rstrip("/"), *parts])

    def _blob(self, sha: str) -> str:
        return self._path("cas", sha[:2], sha)

    def blob_uri(self, sha: str) -> str:
        """The URL of the blob ``sha``, as tasks report it."""
        fs, _ = self._fs
        return fs.unstrip_protocol(self._blob(sha))

    # -- blobs ---------------------------------------------------------------------------

    def has_blob(self, sha: str, size: int) -> bool:
        fs, _ = self._fs
        try:
            return fs.info(self._blob(sha)).get("size") == size
        except FileNotFoundError:
            return False

    def upload(self, path: Path, sha: str, size: int) -> str:
        """Put the local file ``path`` (sha256 ``sha``, ``size`` bytes) as a blob; return its URL."""
        if not self.has_blob(sha, size):
            self._put(lambda fs, tmp: fs.put_file(str(path), tmp), self._blob(sha))
        return self.blob_uri(sha)

    def download(self, sha: str, size: int, dest: Path) -> bool:
        """Copy blob ``sha`` to ``dest``, checking sha256 and size as it streams; False if absent.

        Raises ``CacheError`` (and leaves no ``dest``) when the bytes do not match."""
        fs, _ = self._fs
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, got = hashlib.sha256(), 0
        try:
            with fs.open(self._blob(sha), "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    got += out.write(chunk)
        except FileNotFoundError:
            dest.unlink(missing_ok=True)
            return False
        if digest.hexdigest() != sha or got != size:
            dest.unlink(missing_ok=True)
            raise CacheError(f"shared store blob {self.blob_uri(sha)} is damaged: {got} bytes with sha256 "
                             f"{digest.hexdigest()[:16]}…, expected {size} bytes with {sha[:16]}…",
                             hint="delete that blob from the shared store; the next build re-uploads it")
        return True

    # -- entries -------------------------------------------------------------------------

    def get_entry(self, key: str) -> dict | None:
        fs, _ = self._fs
        try:
            with fs.open(self._path("ac", key[:2], f"{key}.json"), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise CacheError(f"corrupt shared cache entry for {key[:16]}… in {self.url}: {exc}",
                             hint="delete it from the shared store; the next build rewrites it") from None

    def publish(self, record: dict, local_blob) -> None:
        """Upload an entry's missing blobs (``local_blob(sha)`` is the local copy), then the entry."""
        fs, _ = self._fs
        for f in record["files"]:
            self.upload(local_blob(f["sha256"]), f["sha256"], f["size"])
        final = self._path("ac", record["key"][:2], f"{record['key']}.json")
        if fs.exists(final):
            return  # first writer wins: see the class docstring
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        self._put(lambda fs, tmp: fs.pipe_file(tmp, data), final)

    def _put(self, write, final: str) -> None:
        """``write(fs, tmp)`` to a temp name, then move it to ``final``: never visible half-written."""
        fs, _ = self._fs
        tmp = self._path("tmp", f".{final.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}")
        fs.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        write(fs, tmp)
        fs.mv(tmp, final)


def _open_fs(url: str):
    """``(filesystem, root path)`` for ``url`` through fsspec, with the fix when it cannot open."""
    try:
        import fsspec
    except ImportError:
        from .errors import BackendUnavailable

        raise BackendUnavailable("a shared store needs fsspec, which is not installed",
                                 hint="pip install fsspec (and s3fs, gcsfs ... for those URL schemes)") from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise CacheError(f"cannot open the shared store {url}: {exc}",
                         hint="install the fsspec backend for that URL scheme (s3fs for s3://, gcsfs for gs://)") from None
