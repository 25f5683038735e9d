"""The HTTP side of the OCI registry, on the oras SDK. Imported only when a registry is used.

oras' own ``do_request`` retries any exception five times with sleeps of 3 s to 83 s and reads
whole blobs into memory before a monolithic upload; this subclass replaces both: one request
per call (``buildsys.Retry`` decides about retrying, from the exceptions raised here), blobs
streamed from and to disk, manifests checked against their digest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import oras.container
import oras.provider
import oras.utils
import requests

from buildsys import RegistryError, RegistryUnavailable, VerifyError, retry_after, write_stream

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
CHUNK = 1 << 20
TIMEOUT = (10, 300)  # connect, read (seconds)


class NotFound(RegistryError):
    """The registry answered 404 (a tag, manifest, blob or repository that does not exist)."""


class Client(oras.provider.Registry):
    """One registry host. ``credentials`` is ``(user, password, source)`` or None."""

    def __init__(self, host: str, insecure: bool, credentials: tuple[str, str, str] | None):
        super().__init__(hostname=host, insecure=insecure, auth_backend="token")
        self.host = host
        self._user, self._source = (credentials[0], credentials[2]) if credentials else (None, None)
        self._auth_headers: dict[str, str] = {}
        if credentials:
            self.auth.set_basic_auth(credentials[0], credentials[1])

    def container(self, repository: str, reference: str | None = None) -> oras.container.Container:
        name = f"{self.host}/{repository}" + (f"@{reference}" if reference and ":" in reference
                                              else f":{reference}" if reference else "")
        return oras.container.Container(name)

    # -- requests -------------------------------------------------------------------------------

    def do_request(self, url, method="GET", data=None, headers=None, json=None, stream=False):
        """One request (plus one answering an authentication challenge); raises
        ``RegistryUnavailable`` for what a retry may fix, ``RegistryError`` for refusals."""
        what = f"{method} {urlparse(url).path}"
        headers = {**(headers or {}), **self._auth_headers}
        try:
            response = self._send(url, method, data, headers, json, stream)
            if response.status_code == 401:
                headers = self._authenticate(response, headers)
                if hasattr(data, "seek"):
                    data.seek(0)
                response.close()
                response = self._send(url, method, data, headers, json, stream)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RegistryUnavailable(f"cannot reach the OCI registry at {self.host} ({what}): "
                                      f"{_reason(exc)}") from None
        if response.status_code in TRANSIENT_STATUS:
            response.close()
            raise RegistryUnavailable(f"the OCI registry at {self.host} answered "
                                      f"{response.status_code} {response.reason} to {what}",
                                      retry_after=retry_after(response.headers.get("Retry-After")))
        if response.status_code in (401, 403):
            response.close()
            raise self._refused(response.status_code)
        return response

    def _send(self, url, method, data, headers, json, stream):
        return self.session.request(method, url, data=data, json=json, headers=headers, stream=stream,
                                    verify=self._tls_verify, timeout=TIMEOUT)

    def _authenticate(self, response, headers: dict) -> dict:
        challenge = response.headers.get("Www-Authenticate", "")
        basic = getattr(self.auth, "_basic_auth", None)
        if not basic:
            self.auth.load_configs(self.container("x"))  # docker/podman login: ~/.docker/config.json
            basic = getattr(self.auth, "_basic_auth", None)
            if basic and self._source is None:
                self._source = "your docker config"
        if challenge.lower().startswith("basic"):
            if not basic:
                raise self._refused(401)
            self._auth_headers = {"Authorization": f"Basic {basic}"}
            return {**headers, **self._auth_headers}
        headers, changed = self.auth.authenticate_request(response, headers)
        if not changed:
            raise self._refused(401)
        self._auth_headers = {"Authorization": headers["Authorization"]}
        return headers

    def _refused(self, status: int) -> RegistryError:
        if self._user is None and self._source is None:
            return RegistryError(f"the OCI registry at {self.host} needs credentials ({status})",
                                 hint="set BUILDSYS_OCI_USERNAME and BUILDSYS_OCI_PASSWORD, or docker login")
        who = f"user '{self._user}' from {self._source}" if self._user else f"the credentials from {self._source}"
        return RegistryError(f"the OCI registry at {self.host} refused {who} ({status})",
                             hint="check BUILDSYS_OCI_USERNAME and BUILDSYS_OCI_PASSWORD (or docker login)")

    def _url(self, path: str) -> str:
        return f"{self.prefix}://{path}"

    # -- manifests ------------------------------------------------------------------------------

    def get_manifest_bytes(self, repository: str, reference: str) -> tuple[bytes, str]:
        """The manifest's exact bytes and their digest, checked against what the registry says
        it is (``Docker-Content-Digest``) and against ``reference`` when that is a digest."""
        url = self._url(self.container(repository, reference).manifest_url())
        response = self.do_request(url, "GET", headers={"Accept": MANIFEST_TYPE})
        if response.status_code == 404:
            raise NotFound(f"{reference} not found in {self.host}/{repository}")
        _expect(response, 200, f"GET manifest {reference}")
        body = response.content
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        claimed = reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if claimed and claimed != actual:
            raise VerifyError(f"the manifest of {self.host}/{repository}:{reference} hashes to {actual[:19]}…, "
                              f"the registry says {claimed[:19]}…",
                              hint="the registry's copy is damaged or was altered; republish it")
        return body, actual

    def put_manifest(self, repository: str, reference: str, body: bytes) -> str:
        url = self._url(self.container(repository, reference).manifest_url())
        response = self.do_request(url, "PUT", data=body, headers={"Content-Type": MANIFEST_TYPE})
        _expect(response, 201, f"PUT manifest {reference}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise VerifyError(f"the registry stored manifest {returned[:19]}…, we sent {digest[:19]}…")
        return digest

    def tags(self, repository: str) -> list[str]:
        url = self._url(self.container(repository).tags_url())
        tags: list[str] = []
        while url:
            response = self.do_request(url, "GET")
            if response.status_code == 404:
                return []  # no such repository yet
            _expect(response, 200, "GET tags")
            tags += response.json().get("tags") or []
            link = response.links.get("next", {}).get("url")
            url = f"{self.prefix}://{self.host}{link}" if link and link.startswith("/") else link
        return tags

    # -- blobs ----------------------------------------------------------------------------------

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self.do_request(self._url(self.container(repository).get_blob_url(digest)), "HEAD")
        return response.status_code == 200

    def push_blob(self, repository: str, digest: str, size: int, path: Path | None = None,
                  data: bytes | None = None) -> None:
        """Upload one blob, streamed from ``path`` (or ``data``), unless the registry has it."""
        if self.has_blob(repository, digest):
            return
        container = self.container(repository)
        start = self.do_request(self._url(container.upload_blob_url()), "POST", headers={"Content-Length": "0"})
        _expect(start, 202, "POST blob upload")
        location = self._get_location(start, container)
        url = oras.utils.append_url_params(location, {"digest": digest})
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        if path is not None:
            with open(path, "rb") as body:
                response = self.do_request(url, "PUT", data=body, headers=headers)
        else:
            response = self.do_request(url, "PUT", data=data, headers=headers)
        _expect(response, 201, f"PUT blob {digest[:19]}…")

    def pull_blob(self, repository: str, digest: str, path: Path) -> int:
        """Stream a blob to ``path``, checking its digest on the way; return its size."""
        url = self._url(self.container(repository).get_blob_url(digest))
        with self.do_request(url, "GET", stream=True) as response:
            if response.status_code == 404:
                raise NotFound(f"blob {digest[:19]}… is missing from {self.host}/{repository}")
            _expect(response, 200, f"GET blob {digest[:19]}…")
            try:
                _, size = write_stream(response.iter_content(CHUNK), path, digest.split(":", 1)[1])
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise RegistryUnavailable(f"the download of blob {digest[:19]}… from {self.host} "
                                          f"broke off: {_reason(exc)}") from None
        return size


def _expect(response, status: int, what: str) -> None:
    if response.status_code == 404:
        raise NotFound(f"{what}: not found")
    if response.status_code != status:
        try:
            detail = "; ".join(e.get("message", "") for e in response.json().get("errors", []))
        except ValueError:
            detail = response.text[:200]
        raise RegistryError(f"the OCI registry answered {response.status_code} {response.reason} to {what}"
                            + (f": {detail}" if detail else ""))


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, short: 'Connection refused', 'reset by peer'."""
    texts: list[str] = []
    while exc is not None and len(texts) < 8:
        texts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    joined = " ".join(texts).lower()
    for known in ("Connection refused", "Connection reset by peer", "Connection aborted", "timed out",
                  "Name or service not known", "Remote end closed connection"):
        if known.lower() in joined:
            return known
    return texts[0].split("(Caused by")[0][:200] or "connection error"
