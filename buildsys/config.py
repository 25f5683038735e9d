"""Build settings from a config file beside the manifest: ``buildsys.toml``, or the
``[tool.buildsys]`` table of a ``pyproject.toml`` there. Command-line flags win over it::

    [build]
    executor = "ray"
    store = "s3://builds/cache"     # a relative path is relative to the file
    [executors.ray]
    address = "10.0.0.5:6379"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import ManifestError

CONFIG_FILES = ("buildsys.toml", "pyproject.toml")
BUILD_SETTINGS = ("executor", "store")


def read_config(manifest_path: Path) -> tuple[dict, Path | None]:
    """The ``build`` settings beside the manifest and the file they came from (``({}, None)``)."""
    folder = Path(manifest_path).resolve().parent
    for name in CONFIG_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ManifestError(f"cannot read {name}: {exc}", where=str(path)) from None
        if name == "pyproject.toml":
            data = data.get("tool", {}).get("buildsys")
            if data is None:
                continue
        _check(data, path)
        return data, path
    return {}, None


def _check(data: dict, path: Path) -> None:
    unknown = [k for k in data if k not in ("build", "executors")]
    unknown += [f"build.{k}" for k in data.get("build", {}) if k not in BUILD_SETTINGS]
    unknown += [f"executors.{k}" for k, v in data.get("executors", {}).items() if not isinstance(v, dict)]
    if unknown:
        raise ManifestError(f"unknown setting(s) {', '.join(unknown)}", where=str(path),
                            hint=f"[build] takes {', '.join(BUILD_SETTINGS)}; "
                                 "[executors.NAME] tables hold each executor's options")


def config_path(value: str, config: Path) -> str:
    """A store given as a relative path in a config file is relative to that file's folder."""
    if "://" in value or Path(value).is_absolute():
        return value
    return str((config.parent / value).resolve())
