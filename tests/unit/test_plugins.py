"""Plugin loading: the contract is enforced, clashes name both plugins, selection works.
Meta-tests of the contract (every hook documented and tested) are in tests/meta."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import buildsys_text

from buildsys import hookimpl, hookspecs, plugins
from buildsys.errors import PluginError

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fixture_plugins_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


def test_default_load_has_builtins_and_text():
    specs = plugins.Catalog.collect(plugins.load())
    assert {"local"} <= set(specs.executors) and {"file"} <= set(specs.registries)
    assert specs.owner("stages", "text.normalize") == "text"


def test_duplicate_stage_names_both_plugins():
    pm = plugins.load(plugins.PluginConfig(extra=("fixture_plugins.dupe_stage",)))
    with pytest.raises(PluginError) as info:
        plugins.Catalog.collect(pm)
    message = str(info.value)
    assert "stage 'text.normalize'" in message and "'text'" in message and "'fixture_plugins.dupe_stage'" in message


def test_misspelt_hook_is_an_error():
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(extra=("fixture_plugins.misspelt",)))
    assert "buildsys_register_stage" in str(info.value) and "fixture_plugins.misspelt" in str(info.value)


def test_block_and_allow_list():
    blocked = plugins.Catalog.collect(plugins.load(plugins.PluginConfig.from_options(("no:text",), env={})))
    assert "text.normalize" not in blocked.stages and "local" in blocked.executors
    none_allowed = plugins.PluginConfig.from_options((), env={"BUILDSYS_PLUGINS": "someother"})
    assert "text.normalize" not in plugins.Catalog.collect(plugins.load(none_allowed)).stages
    allowed = plugins.PluginConfig.from_options((), env={"BUILDSYS_PLUGINS": "text"})
    assert "text.normalize" in plugins.Catalog.collect(plugins.load(allowed)).stages


def test_config_round_trips_for_workers():
    config = plugins.PluginConfig(allow=("text",), block=("x",), extra=("m",))
    assert plugins.PluginConfig.from_json(config.to_json()) == config


def test_unknown_lookup_lists_known():
    specs = plugins.Catalog.collect(plugins.load())
    with pytest.raises(Exception) as info:
        specs.stage("text.normalise")
    assert "did you mean 'text.normalize'" in str(info.value)


def test_a_backend_adds_its_own_hook():
    """The onnx plugin declares buildsys_onnx_translations through buildsys_addhooks: loaded, the
    hook exists and a plugin implements it; without the onnx plugin, implementing it is an error."""
    pm = plugins.load(plugins.PluginConfig(extra=("fixture_plugins.onnx_translations",)))
    assert pm.hook.buildsys_onnx_translations.spec.namespace.__name__ == "buildsys_onnx.hookspecs"
    assert [i.plugin_name for i in pm.hook.buildsys_onnx_translations.get_hookimpls()] == \
        ["fixture_plugins.onnx_translations"]
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(block=("onnx",), extra=("fixture_plugins.onnx_translations",)))
    assert "buildsys_onnx_translations" in str(info.value) and "fixture_plugins.onnx_translations" in str(info.value)


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


# -- bad plugins --------------------------------------------------------------------------------


def test_kind_collision_names_both_plugins():
    pm = plugins.load(plugins.PluginConfig(extra=("fixture_plugins.kind_collision",)))
    with pytest.raises(PluginError) as info:
        plugins.Catalog.collect(pm)
    assert "kind 'text' is registered by both plugin 'text' and plugin 'fixture_plugins.kind_collision'" \
        in str(info.value)


def test_hook_signature_mismatch_names_plugin_and_argument():
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(extra=("fixture_plugins.bad_signature",)))
    message = str(info.value)
    assert "plugin 'fixture_plugins.bad_signature'" in message and "buildsys_stage_finished" in message
    assert "'result'" in message and "docs/plugins.md" in message


def test_module_named_with_p_that_fails_to_import_is_an_error():
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(extra=("fixture_plugins.import_fails",)))
    message = str(info.value)
    assert "plugin 'fixture_plugins.import_fails'" in message
    assert "buildsys_fixture_dependency_that_is_not_installed" in message


def installed(site: Path, entry_points: dict[str, str]) -> Path:
    """Make ``site`` hold a distribution (metadata only) declaring these ``buildsys`` entry points."""
    info = site / "buildsys_fixture_dist-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: buildsys-fixture-dist\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[buildsys]\n{lines}")
    return site


class _Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def plugin_warnings():
    """What buildsys.plugins warns, captured at its own logger: a library used earlier in this
    test process (Ray, MLflow ...) may have reconfigured logging (disabled or muted loggers),
    which caplog's root handler would not survive."""
    logger = logging.getLogger("buildsys.plugins")
    handler, level, disabled = _Captured(), logger.level, logger.disabled
    logger.disabled = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def test_installed_plugin_that_fails_to_import_is_named_and_the_others_load(tmp_path, monkeypatch, plugin_warnings):
    monkeypatch.syspath_prepend(str(installed(tmp_path, {"importfails": "fixture_plugins.import_fails",
                                                         "works": "fixture_plugins.current_contract"})))
    pm = plugins.load()
    assert set(pm.broken) == {"importfails"}
    assert "buildsys_fixture_dependency_that_is_not_installed" in str(pm.broken["importfails"])
    assert "plugin 'importfails'" in plugin_warnings.text and "-p no:importfails" in plugin_warnings.text
    specs = plugins.Catalog.collect(pm)
    assert "text.normalize" in specs.stages and pm.get_plugin("works") is not None
    with pytest.raises(Exception) as info:
        specs.stage("nothing.like.this")
    assert "not loaded: plugin(s) importfails" in str(info.value)


def test_installed_plugin_for_another_contract_is_named_and_left_out(tmp_path, monkeypatch, plugin_warnings):
    monkeypatch.syspath_prepend(str(installed(tmp_path, {"future": "fixture_plugins.future_contract",
                                                         "current": "fixture_plugins.current_contract"})))
    pm = plugins.load()
    assert set(pm.broken) == {"future"} and pm.get_plugin("current") is not None
    message = str(pm.broken["future"])
    assert "plugin 'future'" in message and ">=2,<3" in message and f"contract {hookspecs.CONTRACT_VERSION}" in message
    assert "plugin 'future'" in plugin_warnings.text


def test_module_named_with_p_for_another_contract_is_an_error():
    with pytest.raises(PluginError) as info:
        plugins.load(plugins.PluginConfig(extra=("fixture_plugins.future_contract",)))
    assert "plugin 'fixture_plugins.future_contract'" in str(info.value) and ">=2,<3" in str(info.value)
    pm = plugins.load(plugins.PluginConfig(extra=("fixture_plugins.current_contract",)))
    assert plugins.contract_of(pm.get_plugin("fixture_plugins.current_contract")) == ">=1.0,<2"


@pytest.mark.parametrize("declared, ok", [(">=1.1,<2", True), ("~=1.0", True), ("==1.*", True),
                                          ("<1.1", False), (">=2", False)])
def test_contract_ranges(declared, ok):
    import types

    module = types.ModuleType("ranged")
    module.BUILDSYS_CONTRACT = declared
    if ok:
        plugins.check_contract(module, "ranged")
    else:
        with pytest.raises(PluginError, match="plugin 'ranged'"):
            plugins.check_contract(module, "ranged")


def test_contract_that_is_not_a_specifier_is_named():
    import types

    module = types.ModuleType("sloppy")
    module.BUILDSYS_CONTRACT = "version one point one"
    with pytest.raises(PluginError) as info:
        plugins.check_contract(module, "sloppy")
    assert "plugin 'sloppy'" in str(info.value) and "not a version specifier" in str(info.value)


def test_contract_version_is_public():
    import buildsys

    assert "CONTRACT_VERSION" in buildsys.__all__ and buildsys.CONTRACT_VERSION == hookspecs.CONTRACT_VERSION
    assert hookspecs.CONTRACT_VERSION.count(".") == 1


def test_plugin_modules_from_the_environment_load_once(tmp_path, monkeypatch):
    config = plugins.PluginConfig.from_options(("fixture_plugins.current_contract",),
                                               env={"BUILDSYS_PLUGIN_MODULES": "fixture_plugins.current_contract, "
                                                                              "fixture_plugins.extra_command"})
    assert config.extra == ("fixture_plugins.current_contract", "fixture_plugins.extra_command")
    monkeypatch.syspath_prepend(str(installed(tmp_path, {"current": "fixture_plugins.current_contract"})))
    pm = plugins.load(config)  # installed as "current" and named again: registered once
    assert [name for name, _ in pm.list_name_plugin() if "current" in name] == ["current"]


# -- the other registration and host hooks, through real plugins ---------------------------------


def test_sources_are_found_by_framework():
    specs = plugins.Catalog.collect(plugins.load())
    assert specs.source("text").kind == "text.source" and specs.owner("sources", "text") == "text"
    with pytest.raises(Exception, match="did you mean 'text'"):
        specs.source("texts")


def test_probe_hardware_adds_facts():
    from buildsys.project import probe_host

    class Probe:
        @hookimpl
        def buildsys_probe_hardware(self, host):
            host.facts["fixture.npu"] = "present"

    pm = plugins.load()
    pm.register(Probe(), name="probe")
    assert probe_host(pm).facts["fixture.npu"] == "present"
    assert "fixture.npu" not in probe_host(plugins.load()).facts


def test_tool_versions_are_collected_from_plugins(tmp_path):
    from buildsys.project import Project

    (tmp_path / "m.txt").write_text("x")
    (tmp_path / "m.yaml").write_text("schema: 1\nname: n\nversion: '1'\nmodel: {framework: text, entrypoint: m.txt}\n"
                                     "targets: {a: {format: text}}\n")
    project = Project(tmp_path / "m.yaml", plugins.PluginConfig(extra=("fixture_plugins.current_contract",)))
    assert project.tool_versions()["current"] == "1.0"
    assert project.tool_versions()["buildsys-text"] == buildsys_text.__version__
