"""buildsys: turn trained models into deployable, hardware-specific artifacts.

The public API for plugin authors is exactly ``__all__``; every other module is internal and
may change between releases. Names are resolved on first use so that ``import buildsys`` (and
``buildsys --help``) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CONTRACT_VERSION": "hookspecs", "hookimpl": "hookspecs",
    "StageContext": "context",
    "BackendUnavailable": "errors", "BuildsysError": "errors", "ManifestError": "errors",
    "PlanError": "errors", "PluginError": "errors", "RegistryError": "errors",
    "StageFailed": "errors",
    "ImmutableVersion": "errors", "RegistryUnavailable": "errors", "VerifyError": "errors",
    "ArtifactRef": "registry", "PublishResult": "registry", "Registry": "registry", "local_tree": "registry",
    "Retry": "transfer", "check_same_digest": "transfer", "listed_files": "transfer", "staged_pull": "transfer",
    "write_stream": "transfer",
    "ExecutorSpec": "specs", "HardwarePolicy": "specs", "InputArtifact": "specs",
    "KindSpec": "specs", "RegistrySpec": "specs", "Requirement": "specs", "RunnerSpec": "specs",
    "SourceSpec": "specs", "StageSpec": "specs", "PlanContext": "specs",
    "entrypoint_files": "entrypoints", "resolve_entrypoint": "entrypoints", "user_frame": "entrypoints",
    "model_files": "entrypoints", "load_samples": "entrypoints",
    "save_reference": "validate", "load_reference": "validate", "load_manifest": "manifest",
    # for executor plugins (ray): the shared scheduling loop, its protocol records, the shared store
    "BaseExecutor": "executor", "Job": "executor", "NodeOutcome": "executor", "Wait": "executor",
    "SharedStore": "cache",
    # the worker hand-off: what a build asks a worker to run, and what the worker answers
    "JobSpec": "jobs", "JobInput": "jobs", "JobSource": "jobs", "JobResult": "jobs", "FileRecord": "records",
    "collect_result": "jobs", "parse_progress": "jobs", "run_worker": "worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'buildsys' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
