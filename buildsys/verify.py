"""``buildsys verify``: re-hash artifacts and cache entries against the lock."""

from __future__ import annotations

from . import lock as lockfile
from .artifacts import check_files, target_dir
from .cache import Store
from .errors import VerifyError
from .hashing import sha256_file


def verify(project) -> int:
    """Return the number of files checked; raise ``VerifyError`` listing every mismatch."""
    path = lockfile.lock_path(project.manifest.path)
    lock = lockfile.read(path)
    if lock is None:
        raise VerifyError(f"no lockfile at {path}", hint="run 'buildsys build' first")
    problems, checked = [], 0
    for target, entry in lock.get("targets", {}).items():
        directory = target_dir(project.out_root, project.manifest.name, project.manifest.version, target)
        if not directory.is_dir():
            problems.append(f"target '{target}': {directory} is missing")
            continue
        problems += [f"target '{target}': {p}" for p in check_files(directory, entry["files"])]
        checked += len(entry["files"])
    for node_id, node in lock.get("nodes", {}).items():
        problems += _check_entry(project.store, node_id, node)
        checked += len(node.get("outputs", []))
    if problems:
        raise VerifyError(f"{len(problems)} mismatch(es) against {path.name}:\n  " + "\n  ".join(problems),
                          hint="rebuild to restore artifacts; 'buildsys gc' drops damaged cache entries")
    return checked


def _check_entry(store: Store, node_id: str, node: dict) -> list[str]:
    key = node.get("action_key")
    if not key or store.lookup(key) is None:
        return []  # not cached here (another machine, or collected): nothing to re-hash
    problems = []
    for output in node.get("outputs", []):
        blob = store.blob_path(output["sha256"])
        if sha256_file(blob) != output["sha256"]:
            problems.append(f"cache entry of {node_id}: blob {blob} is damaged")
    return problems
