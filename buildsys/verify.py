"""``buildsys verify``: re-hash artifacts and cache entries against the lock, check each
artifact.json against the artifact digest the lock recorded and, with a public key, each
artifact's signed provenance."""

from __future__ import annotations

from pathlib import Path

from . import lock as lockfile
from .artifacts import artifact_digest, check_files, check_owner, read_record, target_dir
from .cache import Store
from .errors import NotBuilt, VerifyError
from .hashing import sha256_file


def verify(project, public_key=None) -> int:
    """Return the number of files checked; raise ``VerifyError`` listing every mismatch."""
    path = lockfile.lock_path(project.manifest.path)
    lock = lockfile.read(path)
    if lock is None:
        raise NotBuilt(f"not built: no lockfile at {path}", hint="run 'buildsys build' first")
    check_owner(project.out_root, project.manifest)
    problems, missing, checked = [], [], 0
    for target, entry in lock.get("targets", {}).items():
        directory = target_dir(project.out_root, project.manifest.name, project.manifest.version, target)
        if not directory.is_dir():
            missing.append(target)
            continue
        found = against_lock(directory, entry)
        if public_key is not None and not found:
            found = _provenance_problems(directory, public_key)
        problems += [f"target '{target}': {p}" for p in found]
        checked += len(entry["files"]) + 1
    for node_id, node in lock.get("nodes", {}).items():
        problems += _check_entry(project.store, node_id, node)
        checked += len(node.get("outputs", []))
    where = project.out_root / project.manifest.name / project.manifest.version
    if missing and not problems:
        raise NotBuilt(f"not built in {where}: target(s) {', '.join(missing)} of {path.name}",
                       hint="build them, or point --out (or [build] out in buildsys.toml) at where they were built")
    problems += [f"target '{t}': {where / t} is missing" for t in missing]
    if problems:
        raise VerifyError(f"{len(problems)} mismatch(es) against {path.name}:\n  " + "\n  ".join(problems),
                          hint="rebuild to restore artifacts; 'buildsys gc' drops damaged cache entries")
    return checked


def against_lock(directory: Path, entry: dict) -> list[str]:
    """What in a target ``directory`` differs from its ``entry`` in the lock: every file's
    bytes, and artifact.json itself through the artifact digest (so a consistent edit of
    artifact.json and a file, or of the hardware tag alone, is found)."""
    problems = check_files(directory, entry["files"])
    try:
        record = read_record(directory)
    except VerifyError as exc:
        return problems + [str(exc)]
    locked = entry.get("digest")
    if locked and artifact_digest(record) != locked:
        problems.append(f"{Path(directory) / 'artifact.json'}: digest {artifact_digest(record)[:23]}… != locked "
                        f"{locked[:23]}… (edited after the build)")
    return problems


def _provenance_problems(directory: Path, public_key) -> list[str]:
    from .provenance import verify_directory

    try:
        verify_directory(directory, public_key)
    except VerifyError as exc:
        return [f"provenance: {exc}"]
    return []


def _check_entry(store: Store, node_id: str, node: dict) -> list[str]:
    key = node.get("action_key")
    if not key or store.peek(key) is None:
        return []  # not cached here (another machine, or collected): nothing to re-hash
    problems = []
    for output in node.get("outputs", []):
        blob = store.blob_path(output["sha256"])
        if not blob.is_file():
            problems.append(f"cache entry of {node_id}: blob {blob} is missing")
        elif sha256_file(blob) != output["sha256"]:
            problems.append(f"cache entry of {node_id}: blob {blob} is damaged")
    return problems
