"""Plugin loading: the contract is enforced, clashes name both plugins, selection works."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from buildsys import hookspecs, plugins
from buildsys.errors import PluginError

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def test_default_load_has_builtins_and_text():
    specs = plugins.Specs.collect(plugins.load())
    assert {"local"} <= set(specs.executors) and {"file"} <= set(specs.registries)
    assert specs.owner("stages", "text.normalize") == "text"


def test_duplicate_stage_names_both_plugins():
    pm = plugins.load(plugins.PluginConfig(extra=("fixture_plugins.dupe_stage",)))
    with pytest.raises(PluginError) as info:
        plugins.Specs.collect(pm)
    message = str(info.value)
    assert "stage 'text.normalize'" in message and "'text'" in message and "'fixture_plugins.dupe_stage'" in message


def test_misspelt_hook_is_an_error():
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(extra=("fixture_plugins.misspelt",)))
    assert "buildsys_register_stage" in str(info.value) and "fixture_plugins.misspelt" in str(info.value)


def test_block_and_allow_list():
    blocked = plugins.Specs.collect(plugins.load(plugins.PluginConfig.from_options(("no:text",), env={})))
    assert "text.normalize" not in blocked.stages and "local" in blocked.executors
    none_allowed = plugins.PluginConfig.from_options((), env={"BUILDSYS_PLUGINS": "someother"})
    assert "text.normalize" not in plugins.Specs.collect(plugins.load(none_allowed)).stages
    allowed = plugins.PluginConfig.from_options((), env={"BUILDSYS_PLUGINS": "text"})
    assert "text.normalize" in plugins.Specs.collect(plugins.load(allowed)).stages


def test_config_round_trips_for_workers():
    config = plugins.PluginConfig(allow=("text",), block=("x",), extra=("m",))
    assert plugins.PluginConfig.from_json(config.to_json()) == config


def test_unknown_lookup_lists_known():
    specs = plugins.Specs.collect(plugins.load())
    with pytest.raises(Exception) as info:
        specs.stage("text.normalise")
    assert "did you mean 'text.normalize'" in str(info.value)


def test_every_hook_is_documented():
    for name in hookspecs.all_hook_names():
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 60, f"{name} needs a docstring saying when it is called and what it returns"
    assert len(hookspecs.all_hook_names()) == 15


def test_every_hook_is_used_somewhere_in_tests():
    """Meta-test: each hook is implemented by a plugin the tests exercise, or named in a test."""
    sources = "\n".join(p.read_text() for p in TESTS.rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (TESTS.parent / "plugins").rglob("*.py"))
    sources += "\n".join(p.read_text() for p in (TESTS.parent / "buildsys").rglob("*.py") if p.name != "hookspecs.py")
    for name in hookspecs.all_hook_names():
        assert name in sources, f"hook {name} is neither implemented nor tested"


def test_plugins_import_only_the_public_api():
    """First-party plugins import from buildsys only what buildsys.__all__ offers."""
    import buildsys

    for path in (TESTS.parent / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("buildsys"):
                assert node.module == "buildsys" or not node.module.startswith("buildsys."), \
                    f"{path}: imports private module {node.module}"
                if node.module == "buildsys":
                    assert {a.name for a in node.names} <= set(buildsys.__all__), path


def test_extension_hook_implementers_enter_the_action_key(tmp_path):
    from buildsys.project import Project

    (tmp_path / "m.txt").write_text("x")
    (tmp_path / "m.yaml").write_text("schema: 1\nname: n\nversion: '1'\nmodel: {framework: text, entrypoint: m.txt}\n"
                                     "targets: {a: {format: text}}\n")
    hook = ("buildsys_onnx_translations",)
    plain = Project(tmp_path / "m.yaml").extension_plugins(hook)
    extended = Project(tmp_path / "m.yaml", plugins.PluginConfig(extra=("fixture_plugins.onnx_translations",)))
    assert [k for k in extended.extension_plugins(hook) if "fixture_plugins.onnx_translations" in k]
    assert not [k for k in plain if "fixture_plugins" in k]
    assert extended.extension_plugins(()) == {}
