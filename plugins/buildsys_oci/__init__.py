"""Publish built targets to an OCI registry (OCI Distribution API) as OCI artifacts.

URLs::

    oci://host:port/repository            https, except loopback hosts, which use plain http
    oci+http://host:port/repository       plain http (a registry on a private network)
    oci://host:port/repository:TAG        pull/list only: the artifact that tag points at
    oci://host:port/repository@sha256:D   pull/list only: exactly that manifest

One repository holds one model (``oci://registry/models/resnet18``). Each target is one
artifact tagged ``<version>-<target>`` ('+' in a version becomes '_'): every file is a layer
(media type ``application/vnd.buildsys.file.primary.v1`` or ``...file.data.v1``, annotated with
its name and sha256), artifact.json is the config (``application/vnd.buildsys.artifact.config.v1+json``),
uploaded as its canonical JSON so that the config digest *is* the artifact digest; the manifest
has ``artifactType: application/vnd.buildsys.artifact.v1`` and annotations
``dev.buildsys.{name,version,target,kind,format,precision,hardware,digest,buildsys.version}``.
Blobs go up first and the manifest last, so an interrupted publish leaves no tag. ``--alias A``
adds the tag ``A-<target>`` on the same manifest. A pull fetches the config first, checks it
against the digest and every file name it lists, then fetches exactly those files by sha256.

Credentials: ``BUILDSYS_OCI_USERNAME`` and ``BUILDSYS_OCI_PASSWORD``, else what ``docker
login`` stored in ``~/.docker/config.json``; basic and bearer-token challenges are answered.
The client is the ``oras`` SDK (``pip install 'buildsys[oci]'``), imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from buildsys import (ArtifactRef, PublishResult, RegistryError, RegistrySpec, Requirement, Retry,
                      VerifyError, check_pin, check_same_digest, fetched_record, hookimpl, listed_files, local_tree,
                      staged_pull)

__version__ = "0.1.0"

ARTIFACT_TYPE = "application/vnd.buildsys.artifact.v1"
CONFIG_TYPE = "application/vnd.buildsys.artifact.config.v1+json"
FILE_TYPES = {"primary": "application/vnd.buildsys.file.primary.v1",
              "data": "application/vnd.buildsys.file.data.v1"}
TITLE = "org.opencontainers.image.title"
PROVENANCE = "provenance.json"  # the artifact's provenance envelope, a layer of its own
PROVENANCE_TYPE = "application/vnd.dsse.envelope.v1+json"
PREFIX = "dev.buildsys."
RECORD_KEYS = ("name", "version", "target", "kind", "format", "precision", "hardware")
USER_ENV, PASSWORD_ENV = "BUILDSYS_OCI_USERNAME", "BUILDSYS_OCI_PASSWORD"
ORAS = Requirement("oras", ">=0.2", "pip install 'buildsys[oci]'")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


class OciRegistry:
    """The registry at one ``oci://`` URL; see the module docstring."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        if not parsed.hostname:
            raise RegistryError(f"OCI URL '{url}' names no registry host", hint="use oci://host:port/repository")
        self.host = parsed.netloc
        self.insecure = parsed.scheme == "oci+http" or parsed.hostname in _LOOPBACK
        self.repository, self.pinned = _split_reference(parsed.path.lstrip("/"), url)
        self.display = f"oci://{self.host}/{self.repository}"
        self.retry = Retry.from_env()
        self._client = None

    # -- the Registry protocol ------------------------------------------------------------------

    def publish(self, directory: Path, *, dry_run: bool = False, progress=None,
                alias: str | None = None) -> PublishResult:
        if self.pinned:
            raise RegistryError(f"cannot publish to a pinned reference ({self.display}:{self.pinned})",
                                hint=f"publish to {self.display}")
        directory = Path(directory)
        ref, record = local_tree(directory)
        tag = _tag(ref.version, ref.target)
        alias_tag = _tag(alias, ref.target) if alias else None
        existing = self._manifest(tag)
        location = f"{self.display}:{tag}"
        if existing is not None:
            held = self._held(existing[0], location)
            if held.name != ref.name:
                raise RegistryError(f"{location} holds model '{held.name}', not '{ref.name}'",
                                    hint=f"use one repository per model, e.g. oci://{self.host}/models/{ref.name}")
            check_same_digest(ref, held.digest, location)
            if alias_tag and not dry_run:
                self._put_manifest(alias_tag, existing[2])
            return PublishResult(ref, created=False, location=f"{location}@{existing[1]}", dry_run=dry_run)
        if dry_run:
            return PublishResult(ref, created=True, location=location, dry_run=True)
        body = self._push_blobs(directory, record, ref.digest, progress)
        digest = self._put_manifest(tag, body)
        if alias_tag:
            self._put_manifest(alias_tag, body)
        return PublishResult(ref, created=True, location=f"{location}@{digest}")

    def pull(self, ref: ArtifactRef, dest: Path, *, progress=None) -> Path:
        ref.check()
        reference = self.pinned or _tag(ref.version, ref.target)
        found = self._manifest(reference)
        if found is None:
            known = [str(r) for r in self.list(ref.name)]
            raise RegistryError(f"{ref} is not in {self.display} (no tag {reference})",
                                hint=f"published versions of '{ref.name}': {', '.join(known) or 'none'}")
        manifest, _, _ = found
        held = self._held(manifest, f"{self.display}:{reference}")
        if (held.name, held.version, held.target) != (ref.name, ref.version, ref.target):
            raise RegistryError(f"{self.display}:{reference} holds {held}, not {ref}")
        check_pin(ref, held)
        with staged_pull(dest, held) as staged:
            config = manifest.get("config", {}).get("digest", "")
            self.retry.call(lambda: self.client.pull_blob(self.repository, config, staged / "artifact.json"),
                            "download of artifact.json")
            for f in listed_files(fetched_record(staged / "artifact.json"), held):
                self.retry.call(lambda: self.client.pull_blob(self.repository, "sha256:" + f["sha256"],
                                                              staged / f["name"]), f"download of {f['name']}")
                if progress is not None:
                    progress(f["name"], f["size"])
            for layer in (layer for layer in manifest.get("layers", []) if layer.get("mediaType") == PROVENANCE_TYPE):
                self.retry.call(lambda: self.client.pull_blob(self.repository, layer["digest"], staged / PROVENANCE),
                                "download of the provenance")
        return Path(dest) / ref.target

    def list(self, name: str | None = None) -> list[ArtifactRef]:
        if name is not None:
            ArtifactRef(name, "0", "0").check()
        tags = [self.pinned] if self.pinned else self.retry.call(lambda: self.client.tags(self.repository),
                                                                 f"listing {self.display}")
        refs = []
        for tag in sorted(tags):
            try:
                found = self._manifest(tag)
            except VerifyError:
                continue  # a damaged entry is not a version; pulling it says what is wrong
            ref = self._held(found[0], tag, strict=False) if found else None
            if ref is None or (not self.pinned and tag != _tag(ref.version, ref.target)):
                continue  # not a buildsys artifact, or an alias tag
            if name in (None, ref.name):
                refs.append(ref)
        return refs

    def exists(self, ref: ArtifactRef) -> bool:
        ref.check()
        found = self._manifest(self.pinned or _tag(ref.version, ref.target))
        held = self._held(found[0], ref.target, strict=False) if found else None
        return held is not None and (held.name, held.version, held.target) == (ref.name, ref.version, ref.target)

    # -- helpers --------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            ORAS.check()
            from .client import Client

            self._client = Client(self.host, self.insecure, _credentials())
        return self._client

    def _manifest(self, reference: str) -> tuple[dict, str, bytes] | None:
        """``(manifest, digest, exact bytes)`` for a tag or digest, or None if there is none."""
        from .client import NotFound

        try:
            body, digest = self.retry.call(lambda: self.client.get_manifest_bytes(self.repository, reference),
                                           f"reading {self.display}:{reference}")
        except NotFound:
            return None
        try:
            return json.loads(body), digest, body
        except ValueError:
            raise VerifyError(f"{self.display}:{reference} is not a JSON manifest") from None

    def _held(self, manifest: dict, where: str, strict: bool = True) -> ArtifactRef | None:
        notes = manifest.get("annotations") or {}
        try:
            return ArtifactRef(notes[PREFIX + "name"], notes[PREFIX + "version"], notes[PREFIX + "target"],
                               notes[PREFIX + "digest"], hardware=notes.get(PREFIX + "hardware", ""))
        except KeyError:
            if strict:
                raise RegistryError(f"{where} is not a buildsys artifact (no {PREFIX}* annotations)") from None
            return None

    def _push_blobs(self, directory: Path, record: dict, digest: str, progress) -> bytes:
        """Upload every file, then artifact.json; return the manifest that will make them visible."""
        for f in record["files"]:
            blob, path = "sha256:" + f["sha256"], directory / f["name"]
            self.retry.call(lambda: self.client.push_blob(self.repository, blob, f["size"], path=path),
                            f"upload of {f['name']}")
            if progress is not None:
                progress(f["name"], f["size"])
        config = canonical_record(record)
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        if config_digest != digest:
            raise VerifyError(f"{directory}: artifact.json changed while it was published; publish again")
        provenance = self._push_provenance(directory)
        self.retry.call(lambda: self.client.push_blob(self.repository, config_digest, len(config), data=config),
                        "upload of artifact.json")
        return manifest_bytes(record, digest, config_digest, len(config), provenance)

    def _push_provenance(self, directory: Path) -> dict | None:
        """The provenance envelope as a layer of its own, when the artifact has one."""
        path = directory / PROVENANCE
        if not path.is_file():
            return None
        data = path.read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.retry.call(lambda: self.client.push_blob(self.repository, digest, len(data), data=data),
                        "upload of the provenance")
        return {"mediaType": PROVENANCE_TYPE, "digest": digest, "size": len(data), "annotations": {TITLE: PROVENANCE}}

    def _put_manifest(self, tag: str, body: bytes) -> str:
        return self.retry.call(lambda: self.client.put_manifest(self.repository, tag, body),
                               f"writing {self.display}:{tag}")


def canonical_record(record: dict) -> bytes:
    """artifact.json as the config blob: its canonical JSON, whose sha256 is the artifact digest."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def manifest_bytes(record: dict, digest: str, config_digest: str, config_size: int,
                   provenance: dict | None = None) -> bytes:
    """The OCI image manifest of one target, serialized canonically (same record, same digest)."""
    notes = {PREFIX + key: str(record.get(key, "")) for key in RECORD_KEYS}
    notes |= {TITLE: record["name"], "org.opencontainers.image.version": record["version"],
              PREFIX + "digest": digest, PREFIX + "buildsys.version": str(record.get("buildsys", ""))}
    layers = [{"mediaType": FILE_TYPES.get(f.get("role", "data"), FILE_TYPES["data"]),
               "digest": "sha256:" + f["sha256"], "size": f["size"],
               "annotations": {TITLE: f["name"], PREFIX + "file.sha256": f["sha256"]}}
              for f in record["files"]] + ([provenance] if provenance else [])
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": ARTIFACT_TYPE,
                "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config_size},
                "layers": layers, "annotations": notes}
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _tag(left: str, target: str) -> str:
    tag = f"{left}-{target}".replace("+", "_")
    if not _TAG.match(tag):
        raise RegistryError(f"'{tag}' is not a valid OCI tag",
                            hint="tags are letters, digits, '_', '.', '-', at most 128 characters")
    return tag


def _split_reference(path: str, url: str) -> tuple[str, str | None]:
    """``repo[/sub]``, ``repo:tag`` or ``repo@sha256:…`` -> (repository, tag or digest or None)."""
    if "@" in path:
        repository, pinned = path.split("@", 1)
    elif ":" in path.rsplit("/", 1)[-1]:
        repository, pinned = path.rsplit(":", 1)
    else:
        repository, pinned = path, None
    if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", repository):
        raise RegistryError(f"OCI URL '{url}' names no valid repository '{repository}'",
                            hint="use oci://host:port/repository (lowercase letters, digits, '._-', '/')")
    return repository, pinned


def _credentials() -> tuple[str, str, str] | None:
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if bool(user) != bool(password):
        raise RegistryError(f"set both {USER_ENV} and {PASSWORD_ENV}, or neither")
    return (user, password, USER_ENV) if user else None


@hookimpl
def buildsys_register_registries():
    return [RegistrySpec(scheme="oci", open=OciRegistry,
                         description="OCI registry (oras): oci://host:port/repository"),
            RegistrySpec(scheme="oci+http", open=OciRegistry,
                         description="OCI registry over plain http: oci+http://host:port/repository")]
