"""The project a manifest belongs to, and its settings: ``buildsys.toml``, or the
``[tool.buildsys]`` table of a ``pyproject.toml``, found by walking up from the manifest's
folder (as pytest and ruff find theirs). Its folder is the project root; with no such file the
manifest's own folder is. Artifacts and the cache are resolved from the project root, never
from the current directory, so ``cd /tmp && buildsys verify path/to/m.yaml`` finds them::

    [build]
    out = "artifacts"                # artifact root (default: <project root>/artifacts)
    cache_dir = "artifacts/.cache"   # content-addressed store (default: <out>/.cache)
    jobs = 2                         # -j
    executor = "ray"                 # --executor
    store = "s3://builds/cache"      # --store
    pool = true                      # warm worker pool of the local executor (--no-pool; BUILDSYS_POOL=0)
    worker_jobs = 100                # jobs a pooled worker runs before it is replaced (BUILDSYS_WORKER_JOBS)
    worker_rss_mb = 4096             # ... or once its memory is above this (BUILDSYS_WORKER_RSS_MB)
    stage_timeout = 3600             # seconds a stage may run unless it declares its own timeout
    [executors.ray]                  # options of that executor (--address ...)
    address = "10.0.0.5:6379"
    [registry]
    url = "file:registry"            # default --to / --from of publish, pull, list, exists

Paths in the file are relative to its folder. Command-line flags win over environment
variables (``BUILDSYS_OUT``, ``BUILDSYS_CACHE_DIR``), which win over the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ManifestError

CONFIG_FILES = ("buildsys.toml", "pyproject.toml")
BUILD_SETTINGS = ("executor", "store", "jobs", "out", "cache_dir", "pool", "worker_jobs", "worker_rss_mb",
                  "stage_timeout")
#: The local executor's settings: [build] key -> (environment variable, type).
LOCAL_SETTINGS = {"pool": ("BUILDSYS_POOL", bool), "worker_jobs": ("BUILDSYS_WORKER_JOBS", int),
                  "worker_rss_mb": ("BUILDSYS_WORKER_RSS_MB", int),
                  "stage_timeout": ("BUILDSYS_STAGE_TIMEOUT", float)}
TABLES = ("build", "executors", "registry")
DEFAULT_OUT = "artifacts"


@dataclass(frozen=True)
class Settings:
    """The project's settings: ``data`` as read (``{}`` without a file), ``path`` the file they
    came from (None), ``root`` the project root."""

    data: dict = field(default_factory=dict)
    path: Path | None = None
    root: Path = Path(".")

    @property
    def build(self) -> dict:
        return self.data.get("build", {})

    def path_setting(self, value: str) -> Path:
        """A path given in the file, relative to the file's folder."""
        return (self.root / value).resolve()

    def out_root(self, flag: str | Path | None = None) -> Path:
        chosen = flag or os.environ.get("BUILDSYS_OUT")
        if chosen:
            return Path(chosen).resolve()
        return self.path_setting(self.build.get("out", DEFAULT_OUT))

    def cache_dir(self, out_root: Path, flag: str | Path | None = None) -> Path:
        chosen = flag or os.environ.get("BUILDSYS_CACHE_DIR")
        if chosen:
            return Path(chosen).resolve()
        setting = self.build.get("cache_dir")
        return self.path_setting(setting) if setting else out_root / ".cache"

    @property
    def registry(self) -> str | None:
        return self.data.get("registry", {}).get("url")


def project_settings(manifest_path: Path) -> Settings:
    """The settings of the project ``manifest_path`` belongs to (see the module docstring)."""
    start = Path(manifest_path).resolve().parent
    for folder in (start, *start.parents):
        found = _read(folder)
        if found is not None:
            return found
    return Settings(root=start)


def _read(folder: Path) -> Settings | None:
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
        return Settings(data, path, folder)
    return None


def read_config(manifest_path: Path) -> tuple[dict, Path | None]:
    """The settings of ``manifest_path``'s project and the file they came from (``({}, None)``)."""
    settings = project_settings(manifest_path)
    return settings.data, settings.path


def _check(data: dict, path: Path) -> None:
    unknown = [k for k in data if k not in TABLES]
    unknown += [f"build.{k}" for k in data.get("build", {}) if k not in BUILD_SETTINGS]
    unknown += [f"executors.{k}" for k, v in data.get("executors", {}).items() if not isinstance(v, dict)]
    unknown += [f"registry.{k}" for k in data.get("registry", {}) if k != "url"]
    if unknown:
        raise ManifestError(f"unknown setting(s) {', '.join(unknown)}", where=str(path),
                            hint=f"[build] takes {', '.join(BUILD_SETTINGS)}; [executors.NAME] tables hold each "
                                 "executor's options; [registry] takes url")
    _check_local(data.get("build", {}), path)
    jobs = data.get("build", {}).get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= 256):
        raise ManifestError(f"build.jobs = {jobs!r} is not a number of jobs from 1 to 256", where=str(path))


def _check_local(build: dict, path: Path) -> None:
    for key, (_, kind) in LOCAL_SETTINGS.items():
        value = build.get(key)
        if value is None:
            continue
        ok = isinstance(value, bool) if kind is bool else (
            isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool) and value > 0)
        if not ok:
            what = "true or false" if kind is bool else "a positive number"
            raise ManifestError(f"build.{key} = {value!r} is not {what}", where=str(path))


def local_executor_options(build: dict, env: dict | None = None) -> dict:
    """The local executor's options from ``[build]`` and, winning over it, the environment
    (``BUILDSYS_POOL=0`` turns the pool off)."""
    env = os.environ if env is None else env
    options = {key: build[key] for key in LOCAL_SETTINGS if key in build}
    for key, (variable, kind) in LOCAL_SETTINGS.items():
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            options[key] = raw.lower() not in ("0", "false", "no", "off") if kind is bool else kind(raw)
        except ValueError:
            raise ManifestError(f"{variable}={raw!r} is not a {'number' if kind is not bool else 'flag'}") from None
    return options


def config_path(value: str, config: Path) -> str:
    """A store given as a relative path in a config file is relative to that file's folder."""
    if "://" in value or Path(value).is_absolute():
        return value
    return str((config.parent / value).resolve())
