"""``buildsys gc``: drop cache entries and temp folders nothing references any more."""

from __future__ import annotations

import json
from pathlib import Path

from . import lock as lockfile
from .artifacts import ARTIFACT_JSON
from .cache import Store
from .config import Settings, project_settings
from .fsutil import remove_stale


def collect_garbage(options: dict, manifests: list[Path], dry_run: bool, wait: bool = True,
                    on_wait=None) -> dict[str, int] | None:
    """Remove what nothing references; None when ``wait`` is False and a build holds the store.

    Holds the store's lock exclusively (``Store.usage``): a running build holds it shared from
    its first lookup until its lock is written, so gc waits for it (calling ``on_wait`` first)
    and never removes a fresh output that only the running build knows of."""
    settings = project_settings(manifests[0]) if manifests else Settings(root=Path.cwd())
    out_root = settings.out_root(options.get("out"))
    store = Store(settings.cache_dir(out_root, options.get("cache_dir")))
    lock = store.usage(collecting=True)
    if wait:
        lock.acquire(on_wait)
    elif not lock.try_acquire():
        return None
    try:
        return _collect(store, out_root, manifests, dry_run)
    finally:
        lock.release()


def _collect(store: Store, out_root: Path, manifests: list[Path], dry_run: bool) -> dict[str, int]:
    # staging and swapped-out target folders, and temp lockfiles, of builds that died
    locks = [lockfile.lock_path(m) for m in manifests]
    stale = remove_stale([*out_root.glob("*/*/.*"), *(p for lock in locks for p in lock.parent.glob(f".{lock.name}.tmp-*"))],
                         dry_run)
    keep: set[str] = set()
    for manifest in manifests:
        lock = lockfile.read(lockfile.lock_path(manifest)) or {}
        keep.update(n["action_key"] for n in lock.get("nodes", {}).values() if n.get("action_key"))
    for record in out_root.glob(f"*/*/[!.]*/{ARTIFACT_JSON}"):  # not a dead build's staging folder
        try:
            keep.update(c["action_key"] for c in json.loads(record.read_text()).get("chain", []))
        except (OSError, ValueError, KeyError):
            continue
    removed = store.gc(keep, dry_run=dry_run)
    removed["tmp"] += stale
    return removed
