"""The builtin ``file`` registry: ``file:///abs/path`` or ``file:rel/path``, a folder holding
``<name>/<version>/<target>/`` directories. The embedded default."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..artifacts import ARTIFACT_JSON, PROVENANCE, read_record
from ..errors import RegistryError, VerifyError
from ..fsutil import atomic_write, replace_dir, staging_dir
from ..hookspecs import hookimpl
from ..registry import ArtifactRef, Progress, PublishResult, local_tree
from ..specs import RegistrySpec
from ..transfer import Retry, check_pin, check_same_digest, listed_files, staged_pull


class FileRegistry:
    """``file:///abs/path`` or ``file:rel/path``: ``<root>/<name>/<version>/<target>/``, and each
    target's artifact digest in ``<root>/<name>/<version>/.digests/<target>`` (the index: a
    version is complete once its digest is there, and a pull checks what it reads against it)."""

    def __init__(self, url: str):
        parsed = urlparse(url)
        path = unquote(parsed.path if parsed.scheme else url)
        if parsed.netloc and parsed.netloc != "localhost":
            path = parsed.netloc + path  # file:relative/path
        if not path:
            raise RegistryError(f"file registry URL '{url}' names no folder",
                                hint="use file:///absolute/path or file:relative/path")
        self.root = Path(path).expanduser().resolve()
        self.retry = Retry()  # local file operations have no transient failures to retry

    def _dir(self, ref: ArtifactRef) -> Path:
        ref.check()
        return self.root / ref.name / ref.version / ref.target

    def _index(self, ref: ArtifactRef) -> Path:
        ref.check()
        return self.root / ref.name / ref.version / INDEX / ref.target

    def publish(self, directory: Path, *, dry_run: bool = False, progress: Progress | None = None,
                alias: str | None = None) -> PublishResult:
        if alias:
            raise RegistryError("file:// registries have no aliases",
                                hint="drop --alias, or publish to mlflow or oci")
        ref, record = local_tree(Path(directory))
        final = self._dir(ref)
        held = self._held(ref)
        if held is not None:
            check_same_digest(ref, held.digest, str(final))
            return PublishResult(ref, created=False, location=str(final), dry_run=dry_run)
        if dry_run:
            return PublishResult(ref, created=True, location=str(final), dry_run=True)
        staged = staging_dir(final.parent, ref.target)
        try:
            _copy_tree(Path(directory), staged, record, progress)
            replace_dir(staged, final)  # over what an interrupted publish left, if anything
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        atomic_write(self._index(ref), ref.digest + "\n")  # last: now the version is complete
        return PublishResult(ref, created=True, location=str(final))

    def pull(self, ref: ArtifactRef, dest: Path, *, progress: Progress | None = None) -> Path:
        held = self._held(ref)
        if held is None:
            known = [str(r) for r in self.list(ref.name)]
            raise RegistryError(f"{ref} is not in {self.root}",
                                hint=f"published versions of '{ref.name}': {', '.join(known) or 'none'}")
        check_pin(ref, held)
        source = self._dir(ref)
        with staged_pull(dest, held) as staged:
            record = read_record(source)
            files = listed_files(record, held)  # names and digest checked before anything is copied
            _copy_tree(source, staged, dict(record, files=files), progress)
        return Path(dest) / ref.target

    def list(self, name: str | None = None) -> list[ArtifactRef]:
        if name is not None:
            ArtifactRef(name, "0", "0").check()
        refs = []
        for index in sorted(self.root.glob(f"{name or '*'}/*/{INDEX}/*")):
            ref = ArtifactRef(index.parents[2].name, index.parents[1].name, index.name)
            try:
                held = self._held(ref)
            except (RegistryError, VerifyError, KeyError):
                continue
            if held is not None:
                refs.append(held)
        return refs

    def exists(self, ref: ArtifactRef) -> bool:
        return self._held(ref) is not None

    def _held(self, ref: ArtifactRef) -> ArtifactRef | None:
        """``ref`` as published here (its recorded digest and hardware tag), or None when it is
        not, or not completely, published."""
        try:
            digest = self._index(ref).read_text().strip()
        except FileNotFoundError:
            return None
        try:
            hardware = read_record(self._dir(ref)).get("hardware", "")
        except VerifyError:
            hardware = ""
        return ArtifactRef(ref.name, ref.version, ref.target, digest, hardware=hardware)


INDEX = ".digests"  # a dot folder: no name, version or target can be called that


def _copy_tree(source: Path, dest: Path, record: dict, progress: Progress | None) -> None:
    """Copy the recorded files, provenance if there is one, then artifact.json last, reporting
    each file to ``progress``."""
    for f in record.get("files", []):
        target = dest / f["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / f["name"], target)
        if progress is not None:
            progress(f["name"], f["size"])
    if (source / PROVENANCE).is_file():
        shutil.copy2(source / PROVENANCE, dest / PROVENANCE)
    shutil.copy2(source / ARTIFACT_JSON, dest / ARTIFACT_JSON)


@hookimpl
def buildsys_register_registries():
    return [RegistrySpec(scheme="file", open=FileRegistry,
                         description="a folder: file:///abs/path or file:rel/path")]
