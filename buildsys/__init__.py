"""buildsys: turn trained models into deployable, hardware-specific artifacts.

The public API for plugin authors is exactly ``__all__``; every other module is internal and
may change between releases. Names are resolved on first use so that ``import buildsys`` (and
``buildsys --help``) stays fast; the ``TYPE_CHECKING`` block below names the same objects for
editors and type checkers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # the Python API: build a manifest, load an artifact and run it
    "build": "api", "load": "api", "Session": "api", "BuildReport": "api", "TargetResult": "api",
    "TensorSpec": "api", "InputMismatch": "api", "IncompatibleHardware": "errors", "BuildFailed": "errors",
    # the contract
    "CONTRACT_VERSION": "hookspecs", "hookimpl": "hookspecs", "hookspec": "hookspecs",
    "StageContext": "context", "json_envelope": "envelope",
    # errors
    "BackendUnavailable": "errors", "BuildsysError": "errors", "ManifestError": "errors",
    "PlanError": "errors", "PluginError": "errors", "RegistryError": "errors",
    "StageFailed": "errors",
    "ImmutableVersion": "errors", "RegistryUnavailable": "errors", "VerifyError": "errors",
    # registries
    "ArtifactRef": "registry", "PublishResult": "registry", "Registry": "registry", "local_tree": "registry",
    "Retry": "transfer", "check_same_digest": "transfer", "listed_files": "transfer", "staged_pull": "transfer",
    "write_stream": "transfer", "safe_member": "transfer", "check_pin": "transfer", "retry_after": "transfer", "fetched_record": "transfer", "artifact_digest": "artifacts",
    # what plugins register
    "ExecutorSpec": "specs", "HardwarePolicy": "specs", "InputArtifact": "specs",
    "KindSpec": "specs", "RegistrySpec": "specs", "Requirement": "specs", "RunnerSpec": "specs",
    "SourceSpec": "specs", "StageSpec": "specs", "PlanContext": "specs",
    # what hooks pass: the planned graph, the host, outcomes
    "Graph": "graph", "Node": "graph", "Gpu": "hardware", "HardwareTag": "hardware", "Host": "hardware",
    "NodeOutcome": "records", "FileRecord": "records",
    # user code named by manifests
    "entrypoint_files": "usercode", "resolve_entrypoint": "usercode", "user_frame": "usercode",
    "model_files": "usercode", "load_samples": "usercode", "import_modules": "usercode", "import_files": "usercode",
    "save_reference": "builtin.validate", "load_reference": "builtin.validate", "judge_outputs": "builtin.validate", "load_manifest": "manifest",
    # for executor plugins (ray): the shared scheduling loop, its protocol records, the shared store
    "BaseExecutor": "executor", "Job": "records", "Wait": "records", "SharedStore": "shared_store",
    # the worker hand-off: what a build asks a worker to run, and what the worker answers
    "JobSpec": "jobs", "JobInput": "jobs", "JobSource": "jobs", "JobResult": "jobs",
    "collect_result": "jobs", "parse_progress": "jobs", "run_worker": "worker",
    # warm workers an executor keeps between jobs (the local executor's; ray's on each Ray worker)
    "WorkerPool": "pool", "PoolSettings": "pool",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # the same names, for editors and type checkers; resolved lazily at run time
    from .api import BuildReport, InputMismatch, Session, TargetResult, TensorSpec, build, load
    from .shared_store import SharedStore
    from .context import StageContext
    from .envelope import json_envelope
    from .usercode import (entrypoint_files, import_files, import_modules, load_samples, model_files,
                           resolve_entrypoint, user_frame)
    from .errors import (BackendUnavailable, BuildFailed, BuildsysError, ImmutableVersion, IncompatibleHardware,
                         ManifestError, PlanError, PluginError, RegistryError, RegistryUnavailable, StageFailed,
                         VerifyError)
    from .executor import BaseExecutor
    from .graph import Graph, Node
    from .hardware import Gpu, HardwareTag, Host
    from .hookspecs import CONTRACT_VERSION, hookimpl, hookspec
    from .jobs import JobInput, JobResult, JobSource, JobSpec, collect_result, parse_progress
    from .manifest import load_manifest
    from .records import FileRecord, Job, NodeOutcome, Wait
    from .registry import ArtifactRef, PublishResult, Registry, local_tree
    from .specs import (ExecutorSpec, HardwarePolicy, InputArtifact, KindSpec, PlanContext, RegistrySpec,
                        Requirement, RunnerSpec, SourceSpec, StageSpec)
    from .artifacts import artifact_digest
    from .transfer import (Retry, check_pin, check_same_digest, fetched_record, listed_files, retry_after, safe_member,
                           staged_pull, write_stream)
    from .builtin.validate import judge_outputs, load_reference, save_reference
    from .worker import run_worker
    from .pool import PoolSettings, WorkerPool


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'buildsys' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
