"""The builtin ``file`` registry: ``file:///abs/path`` or ``file:rel/path``, a folder holding
``<name>/<version>/<target>/`` directories. The embedded default."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..artifacts import ARTIFACT_JSON, read_record, records_of
from ..cache import tree_digest
from ..errors import RegistryError, VerifyError
from ..fsutil import replace_dir, staging_dir
from ..hookspecs import hookimpl
from ..registry import ArtifactRef, Progress, PublishResult, local_tree
from ..specs import RegistrySpec
from ..transfer import Retry, check_same_digest, staged_pull


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
        self.retry = Retry()  # local file operations have no transient failures to retry

    def _dir(self, ref: ArtifactRef) -> Path:
        ref.check()
        return self.root / ref.name / ref.version / ref.target

    def publish(self, directory: Path, *, dry_run: bool = False, progress: Progress | None = None,
                alias: str | None = None) -> PublishResult:
        if alias:
            raise RegistryError("file:// registries have no aliases",
                                hint="drop --alias, or publish to mlflow or oci")
        ref, record = local_tree(Path(directory))
        final = self._dir(ref)
        if final.exists():
            existing, _ = self._read(final)
            check_same_digest(ref, existing.digest, str(final))
            return PublishResult(ref, created=False, location=str(final), dry_run=dry_run)
        if dry_run:
            return PublishResult(ref, created=True, location=str(final), dry_run=True)
        staged = staging_dir(final.parent, ref.target)
        try:
            _copy_tree(Path(directory), staged, record, progress)
            replace_dir(staged, final)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return PublishResult(ref, created=True, location=str(final))

    def pull(self, ref: ArtifactRef, dest: Path, *, progress: Progress | None = None) -> Path:
        source = self._dir(ref)
        if not (source / ARTIFACT_JSON).exists():
            known = [str(r) for r in self.list(ref.name)]
            raise RegistryError(f"{ref} is not in {self.root}",
                                hint=f"published versions of '{ref.name}': {', '.join(known) or 'none'}")
        with staged_pull(dest, ref) as staged:
            _copy_tree(source, staged, read_record(source), progress)
        return Path(dest) / ref.target

    def list(self, name: str | None = None) -> list[ArtifactRef]:
        if name is not None:
            ArtifactRef(name, "0", "0").check()
        refs = []
        for meta in sorted(self.root.glob(f"{name or '*'}/*/*/{ARTIFACT_JSON}")):
            try:
                refs.append(self._read(meta.parent)[0])
            except (VerifyError, KeyError):
                continue
        return refs

    def exists(self, ref: ArtifactRef) -> bool:
        return (self._dir(ref) / ARTIFACT_JSON).is_file()

    def _read(self, directory: Path) -> tuple[ArtifactRef, dict]:
        record = read_record(directory)
        return ArtifactRef(record["name"], record["version"], record["target"],
                           tree_digest(records_of(record["files"])), hardware=record.get("hardware", "")), record


def _copy_tree(source: Path, dest: Path, record: dict, progress: Progress | None) -> None:
    """Copy the recorded files, then artifact.json last, reporting each file to ``progress``."""
    for f in record.get("files", []):
        target = dest / f["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / f["name"], target)
        if progress is not None:
            progress(f["name"], f["size"])
    shutil.copy2(source / ARTIFACT_JSON, dest / ARTIFACT_JSON)


@hookimpl
def buildsys_register_registries():
    return [RegistrySpec(scheme="file", open=FileRegistry,
                         description="a folder: file:///abs/path or file:rel/path")]
