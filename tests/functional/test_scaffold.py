"""``buildsys new-plugin``: the generated plugins are complete, and their own tests pass as generated."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import buildsys
from buildsys.scaffold import KINDS, TEMPLATES, generate
from buildsys.testing import run_cli

REPO = Path(__file__).resolve().parents[2]
NAMES = {"stage": "tinystage", "registry": "tiny_reg", "executor": "tinyexec"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    parent = tmp_path_factory.mktemp("scaffold")
    return {kind: generate(name, kind, parent)[0] for kind, name in NAMES.items()}


def test_every_kind_is_generated_and_tested():
    assert set(NAMES) == set(KINDS) == {"stage", "registry", "executor"}


@pytest.mark.slow  # three pytest runs of generated plugins, each building tiny models (~80 s)
def test_generated_plugins_pass_their_own_tests(generated):
    """Each generated suite runs in its own pytest process, with the plugin loaded from its
    source tree (not installed) through BUILDSYS_PLUGIN_MODULES; the three run side by side."""
    procs = {kind: _pytest(root) for kind, root in generated.items()}
    for kind, proc in procs.items():
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"the generated {kind} plugin's tests failed:\n{out[-6000:]}"
        assert " passed" in out and " failed" not in out and " error" not in out, out[-2000:]


def _pytest(root: Path) -> subprocess.Popen:
    [module] = [p.name for p in (root / "src").iterdir()]
    env = dict(os.environ, BUILDSYS_PLUGIN_MODULES=module,
               PYTHONPATH=os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")])))
    for key in ("BUILDSYS_OUT", "BUILDSYS_CACHE_DIR", "BUILDSYS_PLUGINS"):
        env.pop(key, None)
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def test_layout_entry_point_and_contract(generated):
    for kind, root in generated.items():
        name = NAMES[kind]
        meta = tomllib.loads((root / "pyproject.toml").read_text())
        assert meta["project"]["name"] == f"buildsys-{name.replace('_', '-')}" == root.name
        assert meta["project"]["entry-points"]["buildsys"] == {name: f"buildsys_{name}"}
        assert any(d.startswith("buildsys>=") for d in meta["project"]["dependencies"])
        module = (root / "src" / f"buildsys_{name}" / "__init__.py").read_text()
        assert f'BUILDSYS_CONTRACT = ">={buildsys.CONTRACT_VERSION},<' in module
        contract = (root / "tests" / f"test_{name}_contract.py").read_text()
        assert f"({KINDS[kind].contract_class})" in contract, "the contract test must subclass the contract class"
        assert (root / "tests" / f"test_{name}_{kind}.py").is_file() and (root / "README.md").is_file()


def test_generated_code_imports_only_the_public_api(generated):
    for root in generated.values():
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("buildsys"):
                    allowed = "buildsys.testing" if "tests" in path.relative_to(root).parts else None
                    assert node.module in ("buildsys", allowed), f"{path}: from {node.module} import ..."
                    if node.module == "buildsys":
                        assert {a.name for a in node.names} <= set(buildsys.__all__), path
                assert not (isinstance(node, ast.Import) and any(a.name.startswith("buildsys.") for a in node.names))


def test_templates_ship_with_the_package():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = {p for pattern in data["buildsys.scaffold"] for p in TEMPLATES.parent.glob(pattern)}
    assert shipped == {p for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_new_plugin_command(tmp_path):
    made = run_cli("new-plugin", "npu_stage", "--dir", str(tmp_path), cwd=tmp_path).assert_ok()
    assert "tests/test_npu_stage_contract.py" in made.stdout and (tmp_path / "buildsys-npu-stage").is_dir()
    run_cli("new-plugin", "npu_stage", "--dir", str(tmp_path), cwd=tmp_path).assert_error(2, "already exists")
    run_cli("new-plugin", "Bad-Name", cwd=tmp_path).assert_error(2, "'Bad-Name' is not a plugin name")
    run_cli("new-plugin", "text", cwd=tmp_path).assert_error(2, "buildsys_text is already installed")
    run_cli("new-plugin", "x", "--kind", "runner", cwd=tmp_path).assert_error(2, "'runner'")
