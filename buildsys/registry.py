"""The registry interface; the builtin ``file://`` registry (the embedded default) is
``buildsys.builtin.file_registry``.

A registry stores target directories (files + artifact.json) by name/version/target. Versions
are immutable: publishing the same tree digest again is a no-op, a different digest for an
existing name/version/target is refused. ``pull`` verifies every checksum before the files
appear at their destination. Credentials, where a registry needs them, come from the
environment or the tool's own config, never from URLs, manifests, locks or logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol
from urllib.parse import urlparse

from .artifacts import ARTIFACT_JSON, artifact_digest, check_files, read_record
from .errors import RegistryError, VerifyError
from .fsutil import check_safe_name
from .transfer import Retry

#: ``progress(file name, bytes)``: called after each file of a publish or pull is transferred.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class ArtifactRef:
    """One published target. ``digest`` is its artifact digest, ``sha256:<hex>`` over its
    canonical artifact.json (``buildsys.artifacts.artifact_digest``), "" where unknown; given to
    ``pull`` it pins what may be pulled. ``hardware`` is its hardware tag, where the registry
    listed it (not part of equality)."""

    name: str
    version: str
    target: str
    digest: str = ""
    hardware: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.name}/{self.version}/{self.target}"

    def check(self) -> ArtifactRef:
        """Raise ``RegistryError`` unless name, version and target are safe names."""
        for value, what in ((self.name, "name"), (self.version, "version"), (self.target, "target")):
            try:
                check_safe_name(value, what)
            except ValueError as exc:
                raise RegistryError(str(exc)) from None
        return self


@dataclass(frozen=True)
class PublishResult:
    ref: ArtifactRef
    created: bool  # False: the same digest was already there (no-op)
    location: str
    dry_run: bool = False  # True: nothing was written; ``created`` says what a real run would do


class Registry(Protocol):
    """What ``RegistrySpec.open(url)`` returns. Every method may raise ``RegistryError``
    (``RegistryUnavailable`` once retries of a transient failure are spent).

    ``retry``: the ``Retry`` policy for transient failures; the CLI sets it from ``--retries``.

    ``publish(directory, dry_run=, progress=, alias=)`` re-hashes the built target first
    (``local_tree``), writes every file before the metadata that makes the version visible,
    records the artifact digest (``ref.digest``) with it, and returns ``created=False`` for the
    same digest again; a different digest raises ``ImmutableVersion``. ``dry_run`` does every
    check and writes nothing. ``alias`` (where the registry supports it) points the movable
    name ``<alias>-<target>`` at the version.

    ``pull(ref, dest, progress=)`` fetches into ``dest/<target>`` through ``staged_pull``:
    when ``ref.digest`` is set, it first refuses a version with another recorded digest
    (``check_pin``); it fetches artifact.json first and checks it against the recorded digest
    and every listed name (``listed_files``, ``safe_member``) before fetching any file; nothing
    appears unless every checksum matches. ``list(name=None)`` returns complete versions only,
    with ``digest`` and ``hardware`` set; ``exists(ref)`` says whether ``ref``'s
    name/version/target is published. ``buildsys.testing.RegistryContract`` checks all of it.
    """

    retry: Retry

    def publish(self, directory: Path, *, dry_run: bool = False, progress: Progress | None = None,
                alias: str | None = None) -> PublishResult: ...
    def pull(self, ref: ArtifactRef, dest: Path, *, progress: Progress | None = None) -> Path: ...
    def list(self, name: str | None = None) -> list[ArtifactRef]: ...
    def exists(self, ref: ArtifactRef) -> bool: ...


def local_tree(directory: Path) -> tuple[ArtifactRef, dict]:
    """Read a built target directory, check its files, return its ref and record."""
    record = read_record(directory)
    problems = check_files(directory, record.get("files", []))
    if problems:
        raise VerifyError(f"{directory} does not match its {ARTIFACT_JSON}:\n  " + "\n  ".join(problems),
                          hint="rebuild the target before publishing it")
    ref = ArtifactRef(record["name"], record["version"], record["target"], artifact_digest(record),
                      hardware=record.get("hardware", ""))
    return ref.check(), record


def open_registry(catalog, url: str, retry: Retry | None = None) -> Registry:
    """Open the registry at ``url`` with the plugin that registered its scheme."""
    parsed = urlparse(url)
    if parsed.password:
        raise RegistryError("the registry URL carries a password",
                            hint="URLs end up in shell history and logs: remove 'user:password@' and "
                                 "give credentials through the registry's environment variables")
    registry = catalog.registry(parsed.scheme or "file").open(url)
    if retry is not None:
        registry.retry = retry
    return registry


def select_for_host(refs: list[ArtifactRef], offered: list) -> ArtifactRef:
    """The one ref among ``refs`` (targets of one name/version) whose hardware tag runs on a
    machine offering ``offered`` (``HardwareTag``s, e.g. ``Host.tags()``).

    The most specific fit wins: a CUDA build including one of the machine's compute
    capabilities (a single-CC engine before a multi-CC one), then a CPU build for its arch and
    ISA (the highest ISA level first), then a portable (``any``) one. Raises ``RegistryError``
    when nothing fits, or when several targets fit equally well, listing them.
    """
    from .hardware import parse

    fits = [(score, ref) for ref in refs if (score := _fit(ref.hardware, offered, parse)) is not None]
    machine = ", ".join(str(t) for t in offered) or "nothing"
    listed = ", ".join(f"{r.target} ({r.hardware or '?'})" for r in refs) or "none"
    if not fits:
        raise RegistryError(f"no published target runs on this machine ({machine}); published: {listed}",
                            hint="name a TARGET, or select for other hardware with --hardware")
    best = max(score for score, _ in fits)
    top = sorted((ref for score, ref in fits if score == best), key=lambda r: r.target)
    if len(top) > 1:
        names = ", ".join(f"{r.target} ({r.hardware})" for r in top)
        raise RegistryError(f"{len(top)} targets fit this machine ({machine}) equally well: {names}",
                            hint="name one of them as TARGET")
    return top[0]


def _fit(text: str, offered: list, parse) -> tuple[int, int] | None:
    """How well an artifact tagged ``text`` fits ``offered``: higher is more specific, None: it does not run."""
    from .hardware import ISA_LEVELS, HardwareError

    try:
        tag = parse(text or "any")
    except HardwareError:
        return None
    if tag.device == "any":
        return (0, 0)
    scores = []
    for have in offered:
        if tag.device == have.device == "cpu" and tag.arch in (None, have.arch):
            level = ISA_LEVELS.index(tag.isa or "baseline")
            if level <= ISA_LEVELS.index(have.isa or "baseline"):
                scores.append((1, level))
        elif tag.device == have.device == "cuda" and (not tag.sms or set(tag.sms) & set(have.sms)):
            scores.append((2, -len(tag.sms) if tag.sms else -1000))
    return max(scores, default=None)
