"""Artifact directories: ``<out>/<name>/<version>/<target>/`` with files and ``artifact.json``.

File names carry their tags, wheel-style::

    <name>-<version>-<format>-<precision>[-<tooltag>]-<hardware>.<ext>
    resnet18-1.2.0-tensorrt-fp16-trtrtx1.7-cuda_sm86.sm89.plan

Only the stage's primary file is renamed; companions (ONNX external data) keep their names so
references between files stay valid. A directory is staged beside its final place and swapped
in whole, so a reader never sees half of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .cache import Entry, FileRecord, Store
from .errors import VerifyError
from .fsutil import check_safe_name, atomic_write, replace_dir, sha256_file, staging_dir

ARTIFACT_JSON = "artifact.json"
ARTIFACT_SCHEMA = 1


def target_dir(out_root: Path, name: str, version: str, target: str) -> Path:
    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        check_safe_name(value, what)
    return Path(out_root) / name / version / target


def wheel_name(name: str, version: str, fmt: str, precision: str, hardware: str,
               suffix: str, tool_tag: str | None = None) -> str:
    parts = [name, version, fmt, precision, tool_tag, hardware]
    return "-".join(p.replace("-", "_") for p in parts if p) + suffix


def primary_name(entry: Entry) -> str | None:
    name = entry.meta.get("primary")
    if name is None and len(entry.files) == 1:
        name = entry.files[0].name
    return name


def _suffix(filename: str) -> str:
    name = Path(filename).name
    return name[name.index("."):] if "." in name else ""


@dataclass
class ArtifactWriter:
    """Writes one target's directory from its final cache entry."""

    store: Store
    out_root: Path

    def write(self, manifest, target: str, entry: Entry, record: dict) -> Path:
        """Materialise ``entry`` for ``target`` with ``record`` as artifact.json, unless current."""
        final = target_dir(self.out_root, manifest.name, manifest.version, target)
        rename = self.names(manifest, target, entry, record)
        if self._up_to_date(final, record):
            return final
        staged = staging_dir(final.parent, target)
        files = self.store.materialize(entry, staged, rename)
        primary = rename.get(primary_name(entry) or "", None)
        record = dict(record, files=[dict(f.to_json(), role="primary" if f.name == primary else "data")
                                     for f in files])
        atomic_write(staged / ARTIFACT_JSON, json.dumps(record, indent=2, sort_keys=True) + "\n")
        replace_dir(staged, final)
        return final

    def names(self, manifest, target: str, entry: Entry, record: dict) -> dict[str, str]:
        """Store name -> artifact name: the primary file gets its wheel-style name."""
        primary = primary_name(entry)
        if primary is None:
            return {}
        spec = manifest.targets[target]
        return {primary: wheel_name(manifest.name, manifest.version, spec.format, spec.precision,
                                    record["hardware"], _suffix(primary), entry.meta.get("tool_tag"))}

    def _up_to_date(self, final: Path, record: dict) -> bool:
        """True if ``final`` holds this exact chain and its files look untouched (size, mtime)."""
        meta_path = final / ARTIFACT_JSON
        try:
            existing = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return False
        if [c["action_key"] for c in existing.get("chain", [])] != [c["action_key"] for c in record["chain"]]:
            return False
        written = meta_path.stat().st_mtime_ns
        for f in existing.get("files", []):
            path = final / f["name"]
            if not path.is_file() or path.stat().st_size != f["size"] or path.stat().st_mtime_ns > written:
                return False
        return True


def read_record(directory: Path) -> dict:
    try:
        return json.loads((Path(directory) / ARTIFACT_JSON).read_text())
    except FileNotFoundError:
        raise VerifyError(f"no {ARTIFACT_JSON} in {directory}", hint="build the target first") from None
    except ValueError as exc:
        raise VerifyError(f"{directory / ARTIFACT_JSON} is not valid JSON: {exc}") from None


def check_files(directory: Path, files: list[dict]) -> list[str]:
    """Re-hash every file; return one line per mismatch (missing, changed, unexpected)."""
    directory = Path(directory)
    problems = []
    for f in files:
        path = directory / f["name"]
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = sha256_file(path)
        if actual != f["sha256"]:
            problems.append(f"{path}: sha256 {actual[:12]}… != recorded {f['sha256'][:12]}…")
    listed = {f["name"] for f in files} | {ARTIFACT_JSON}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if path.relative_to(directory).as_posix() not in listed:
            problems.append(f"{path}: not recorded in {ARTIFACT_JSON}")
    return problems


def records_of(files: list[dict]) -> list[FileRecord]:
    return [FileRecord(f["name"], f["sha256"], f["size"]) for f in files]
