"""Meta-tests of the contract: every hook (core and backend extension hooks) is documented and
exercised by a named test, and plugins import from buildsys only its public face."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from buildsys import hookspecs

TESTS = Path(__file__).resolve().parents[1]


def test_every_hook_is_documented():
    from buildsys import hookdoc

    functions = [getattr(hookspecs, n) for n in hookspecs.all_hook_names()]
    functions += [f for fs in hookdoc.extension_hooks().values() for f in fs]
    for function in functions:
        name, doc = function.__name__, inspect.getdoc(function)
        assert doc and len(doc) > 60, f"{name} needs a docstring saying when it is called and what it returns"
        assert "called" in doc.lower(), f"{name}'s docstring must say when it is called"


#: Meta-test data: the test that exercises each hook through a plugin. A new hook in
#: hookspecs.py fails ``test_every_hook_is_tested`` until it has an entry here.
HOOK_TESTS = {
    "buildsys_register_kinds": "unit/test_plugins.py::test_kind_collision_names_both_plugins",
    "buildsys_register_sources": "unit/test_plugins.py::test_sources_are_found_by_framework",
    "buildsys_register_stages": "unit/test_plugins.py::test_duplicate_stage_names_both_plugins",
    "buildsys_register_runners": "functional/test_torch.py::test_validation_failure_lists_every_mismatch",
    "buildsys_register_registries": "contract/test_text_plugin_contract.py::TestFileRegistry",
    "buildsys_register_executors": "contract/test_local_executor_contract.py::TestLocalExecutor",
    "buildsys_probe_hardware": "unit/test_plugins.py::test_probe_hardware_adds_facts",
    "buildsys_tool_versions": "unit/test_plugins.py::test_tool_versions_are_collected_from_plugins",
    "buildsys_addhooks": "unit/test_plugins.py::test_a_backend_adds_its_own_hook",
    "buildsys_onnx_translations":  # the onnx plugin's own hook (buildsys_onnx.hookspecs)
        "functional/test_onnx.py::test_unmapped_operators_are_all_listed_then_a_plugin_translates_them",
    "buildsys_validation_checks": "functional/test_precision.py::test_a_coverage_warning_is_shown_when_accuracy_still_passes",
    "buildsys_compare_layers": "functional/test_accuracy_debug.py::test_debug_ranks_the_clipped_layer_first_with_its_module_and_source",
    "buildsys_bench_references": "functional/test_bench.py::test_bench_times_references_and_artifacts_side_by_side",
    "buildsys_worker_reset": "functional/test_pool.py::test_torch_stages_share_one_worker_and_match_no_pool_checksums",
    "buildsys_add_commands": "functional/test_cli.py::test_plugin_command_and_blocking",
    "buildsys_configure": "functional/test_cli.py::test_terminal_reporter_is_a_default_plugin_that_can_be_blocked",
    "buildsys_build_started": "functional/test_hooks.py::test_lifecycle_order_and_progress",
    "buildsys_stage_started": "functional/test_hooks.py::test_lifecycle_order_and_progress",
    "buildsys_stage_progress": "functional/test_hooks.py::test_lifecycle_order_and_progress",
    "buildsys_stage_finished": "functional/test_hooks.py::test_lifecycle_order_and_progress",
    "buildsys_build_finished": "functional/test_hooks.py::test_lifecycle_order_and_progress",
}


def all_hooks() -> list[str]:
    """The core contract's hooks and the extension hooks the installed backends add."""
    from buildsys import hookdoc

    return hookspecs.all_hook_names() + [f.__name__ for fs in hookdoc.extension_hooks().values() for f in fs]


def test_every_hook_is_tested():
    """Meta-test: every hook in the contract names a test that exercises it, and that test exists."""
    assert sorted(HOOK_TESTS) == sorted(all_hooks()), "add the new hook's test to HOOK_TESTS"
    for hook, test in HOOK_TESTS.items():
        relpath, name = test.split("::")
        path = TESTS / relpath
        assert path.is_file(), f"{hook}: {path} does not exist"
        defined = {n.name for n in ast.parse(path.read_text()).body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert name in defined, f"{hook}: {relpath} defines no {name}"


def _imported_buildsys_names(path: Path) -> list[tuple[str, set[str]]]:
    """(module, names) for every import of buildsys or a submodule in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "buildsys":
            found.append((node.module, {a.name for a in node.names}))
        elif isinstance(node, ast.Import):
            found += [(a.name, set()) for a in node.names if a.name.split(".")[0] == "buildsys"]
    return found


def test_plugins_import_only_the_public_api():
    """First-party plugins and the third-party example import from buildsys only what
    ``buildsys.__all__`` offers; their test suites may also use the test kit, buildsys.testing."""
    import buildsys

    files = sorted((TESTS.parent / "plugins").rglob("*.py"))
    assert any("examples" in p.parts for p in files), "the third-party example is missing"
    for path in files:
        in_tests = "tests" in path.relative_to(TESTS.parent / "plugins").parts
        for module, names in _imported_buildsys_names(path):
            if in_tests and module == "buildsys.testing":
                continue
            assert module == "buildsys", f"{path}: imports private module {module}"
            assert names <= set(buildsys.__all__), f"{path}: imports {names - set(buildsys.__all__)}"


def test_the_import_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import buildsys.plan\nfrom buildsys.cache import Store\nfrom buildsys import Specs\n")
    assert _imported_buildsys_names(bad) == [("buildsys.plan", set()), ("buildsys.cache", {"Store"}),
                                             ("buildsys", {"Specs"})]


