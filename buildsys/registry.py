"""The registry interface and the builtin ``file://`` registry (the embedded default).

A registry stores target directories (files + artifact.json) by name/version/target. Versions
are immutable: publishing the same tree digest again is a no-op, a different digest for an
existing name/version/target is refused. ``pull`` verifies every checksum before the files
appear at their destination. Credentials, where a registry needs them, come from the
environment, never from manifests, locks or logs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from .artifacts import ARTIFACT_JSON, check_files, read_record, records_of
from .cache import tree_digest
from .errors import ImmutableVersion, RegistryError, VerifyError
from .fsutil import check_safe_name, replace_dir, staging_dir
from .hookspecs import hookimpl
from .specs import RegistrySpec


@dataclass(frozen=True)
class ArtifactRef:
    name: str
    version: str
    target: str
    digest: str = ""

    def __str__(self) -> str:
        return f"{self.name}/{self.version}/{self.target}"


@dataclass(frozen=True)
class PublishResult:
    ref: ArtifactRef
    created: bool  # False: the same digest was already there (no-op)
    location: str


class Registry(Protocol):
    def publish(self, directory: Path) -> PublishResult: ...
    def pull(self, ref: ArtifactRef, dest: Path) -> Path: ...
    def list(self) -> list[ArtifactRef]: ...


def local_tree(directory: Path) -> tuple[ArtifactRef, dict]:
    """Read a built target directory, check its files, return its ref and record."""
    record = read_record(directory)
    problems = check_files(directory, record.get("files", []))
    if problems:
        raise VerifyError(f"{directory} does not match its {ARTIFACT_JSON}:\n  " + "\n  ".join(problems),
                          hint="rebuild the target before publishing it")
    ref = ArtifactRef(record["name"], record["version"], record["target"],
                      tree_digest(records_of(record["files"])))
    return ref, record


def open_registry(specs, url: str) -> Registry:
    scheme = urlparse(url).scheme or "file"
    return specs.registry(scheme).open(url)


class FileRegistry:
    """``file:///abs/path`` or ``file:rel/path``: ``<root>/<name>/<version>/<target>/``."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        path = unquote(parsed.path if parsed.scheme else url)
        if parsed.netloc and parsed.netloc != "localhost":
            path = parsed.netloc + path  # file:relative/path
        if not path:
            raise RegistryError(f"file registry URL '{url}' names no folder",
                                hint="use file:///absolute/path or file:relative/path")
        self.root = Path(path).expanduser().resolve()

    def _dir(self, ref: ArtifactRef) -> Path:
        for value, what in ((ref.name, "name"), (ref.version, "version"), (ref.target, "target")):
            try:
                check_safe_name(value, what)
            except ValueError as exc:
                raise RegistryError(str(exc)) from None
        return self.root / ref.name / ref.version / ref.target

    def publish(self, directory: Path) -> PublishResult:
        ref, _ = local_tree(Path(directory))
        final = self._dir(ref)
        if final.exists():
            existing, _ = self._read(final)
            if existing.digest == ref.digest:
                return PublishResult(ref, created=False, location=str(final))
            raise ImmutableVersion(
                f"{ref} is already published with digest {existing.digest[:12]}…, this one is {ref.digest[:12]}…",
                where=str(final), hint="versions are immutable: bump the manifest's version")
        staged = staging_dir(final.parent, ref.target)
        try:
            shutil.copytree(directory, staged, dirs_exist_ok=True)
            replace_dir(staged, final)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return PublishResult(ref, created=True, location=str(final))

    def pull(self, ref: ArtifactRef, dest: Path) -> Path:
        source = self._dir(ref)
        if not (source / ARTIFACT_JSON).exists():
            known = [str(r) for r in self.list() if r.name == ref.name]
            raise RegistryError(f"{ref} is not in {self.root}",
                                hint=f"published versions of '{ref.name}': {', '.join(known) or 'none'}")
        return copy_verified(source, Path(dest))

    def list(self) -> list[ArtifactRef]:
        refs = []
        for meta in sorted(self.root.glob(f"*/*/*/{ARTIFACT_JSON}")):
            try:
                refs.append(self._read(meta.parent)[0])
            except VerifyError:
                continue
        return refs

    def _read(self, directory: Path) -> tuple[ArtifactRef, dict]:
        record = read_record(directory)
        return ArtifactRef(record["name"], record["version"], record["target"],
                           tree_digest(records_of(record["files"]))), record


def copy_verified(source: Path, dest: Path) -> Path:
    """Copy a target directory into ``dest``/<target>, verifying every checksum before it appears."""
    record = read_record(source)
    final = Path(dest) / record["target"]
    staged = staging_dir(Path(dest), record["target"])
    try:
        shutil.copytree(source, staged, dirs_exist_ok=True)
        problems = check_files(staged, record["files"])
        if problems:
            raise VerifyError("pulled files do not match their checksums:\n  " + "\n  ".join(problems),
                              hint="the registry copy is damaged; republish it")
        replace_dir(staged, final)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return final


@hookimpl
def buildsys_register_registries():
    return [RegistrySpec(scheme="file", open=FileRegistry,
                         description="a folder: file:///abs/path or file:rel/path")]
