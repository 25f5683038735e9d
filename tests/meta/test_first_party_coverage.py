"""Meta-test: every first-party stage and executor has a contract test class in tests/contract/
(executors needing a live backend: in tests/integration/test_*executor*.py).

First-party plugins are the builtins (``buildsys.builtin.DEFAULT_PLUGINS``) and the entry points
that buildsys's own pyproject.toml declares; third-party ones (the OpenVINO example) carry their own
tests. Coverage is found by importing every ``tests/contract/test_*.py`` module and collecting
the ``StageContract`` subclasses' ``stage`` and the ``ExecutorContract`` subclasses' ``executor``.
Whether the covering tests pass is for those tests to say; this checks that they exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

from buildsys import plugins
from buildsys.testing import ExecutorContract, StageContract

TESTS = Path(__file__).resolve().parents[1]
CONTRACT_TESTS = TESTS / "contract"


@cache
def first_party_specs() -> plugins.Catalog:
    """What the builtins and the entry points buildsys's own pyproject declares register.

    Read from the pyproject and imported by module, not through installed metadata, which may
    predate a plugin added since the last install."""
    project = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["project"]
    pm = plugins.load(plugins.PluginConfig(allow=()))  # the builtins only
    for name, module in project["entry-points"][plugins.ENTRY_POINT_GROUP].items():
        pm.register(importlib.import_module(module), name=name)
    return plugins.Catalog.collect(pm)


def _owned(category: str) -> dict[str, list[str]]:
    """First-party plugin -> the names it registers in ``category``."""
    specs = first_party_specs()
    owned: dict[str, list[str]] = {}
    for key in sorted(getattr(specs, category)):
        owned.setdefault(specs.owner(category, key), []).append(key)
    return owned


@cache
def covered() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(stage -> test module, executor -> test module, module -> why it could not be imported)."""
    stages, executors, broken = {}, {}, {}
    # Executors that need a running backend keep their contract class beside that backend's
    # fixtures (the Ray executor's cluster lives in tests/integration).
    executor_tests = sorted((TESTS / "integration").glob("test_*executor*.py"))
    for path in sorted(CONTRACT_TESTS.glob("test_*.py")) + executor_tests:
        try:
            module = _import(path)
        except BaseException as exc:  # pytest.skip at module level raises a BaseException
            broken[path.name] = f"{type(exc).__name__}: {exc}"
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, StageContract) and value.stage:
                stages.setdefault(value.stage, path.name)
            if isinstance(value, type) and issubclass(value, ExecutorContract) and value.executor:
                executors.setdefault(value.executor, path.name)
    return stages, executors, broken


def _import(path: Path):
    """Import a test module by path, with its folder importable (as pytest's rootdir insertion does)."""
    spec = importlib.util.spec_from_file_location(f"_coverage_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_first_party_plugins_are_found():
    owned = _owned("stages")
    assert {"text", "onnx", "torch", "buildsys.builtin.validate"} <= set(owned), sorted(owned)
    assert "openvino" not in owned, "the third-party example is not first-party"


@pytest.mark.parametrize("plugin", sorted(_owned("stages")))
def test_every_stage_has_a_contract_test(plugin):
    stages, _, broken = covered()
    missing = [s for s in _owned("stages")[plugin] if s not in stages]
    assert not missing, (
        f"plugin '{plugin}': no StageContract subclass in tests/contract/ covers stage(s) {', '.join(missing)}; "
        f"add a class per stage to tests/contract/test_{plugin.split('.')[-1]}_contract.py "
        f"(stage = '<name>'; final = False for a stage that makes no target's artifact)"
        + (f". Modules that could not be imported: {broken}" if broken else ""))


def test_every_executor_has_a_contract_test():
    _, executors, broken = covered()
    missing = [f"{e} (plugin {p})" for p, names in _owned("executors").items() for e in names if e not in executors]
    assert not missing, f"no ExecutorContract subclass covers executor(s) {', '.join(missing)}; {broken or ''}"


def test_the_coverage_check_sees_the_known_contract_tests():
    stages, executors, _ = covered()
    assert stages["text.normalize"] == "test_text_plugin_contract.py"
    assert stages["onnx.export"] == "test_onnx_contract.py" and executors["local"] == "test_local_executor_contract.py"
