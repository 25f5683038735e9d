"""Test kit for plugin authors: fixtures, a CLI runner, tiny models and contract suites.

Installed as a pytest plugin (entry point ``pytest11: buildsys``), so the fixtures
``buildsys_project``, ``buildsys_cli`` and ``tiny_manifest`` are available in any test suite.
Subclass a contract class to run buildsys's own checks against your plugin::

    from buildsys.testing import StageContract, tiny_text_manifest

    class TestMyStage(StageContract):
        stage = "mything.compile"
        target = "compiled"
        manifest = tiny_text_manifest({"compiled": "{format: mything.bin}"})
        files = {"model.txt": "hello"}

``StageContract`` checks one stage, ``RegistryContract`` one registry and ``ExecutorContract``
one executor; ``buildsys new-plugin`` writes a plugin whose tests already do this. Names are
imported on first use, so a worker process that loads ``buildsys.testing.recorder`` does not
import pytest.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "StageContract": "contracts", "RegistryContract": "registry_contract",
    "SharedStageContract": "contracts", "shared_build": "contracts",
    "ExecutorContract": "executor_contract",
    "FaultProxy": "faultproxy", "free_port": "faultproxy",
    "CliResult": "runner", "ProjectDir": "runner", "run_cli": "runner", "json_result": "runner",
    "TINY_TEXT_FILES": "models", "TINY_TORCH_FILES": "models", "TINY_TORCH_MODEL": "models",
    "tiny_text_manifest": "models", "tiny_torch_manifest": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'buildsys.testing' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
