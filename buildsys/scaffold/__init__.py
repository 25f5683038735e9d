"""``buildsys new-plugin``: write a new plugin distribution from the templates beside this file.

``generate(name, kind, parent)`` creates ``parent/buildsys-NAME/``: a pyproject declaring the
``buildsys`` entry point, the module ``src/buildsys_NAME/__init__.py`` with one working example
(a stage, a registry or an executor) built only on ``buildsys.__all__``, a README, and tests
that subclass the matching contract class from ``buildsys.testing`` plus tests of its own. The
generated tests pass as generated; the test suite of buildsys runs them to keep it so.
"""

from __future__ import annotations

import importlib.util
import re
import string
from dataclasses import dataclass
from pathlib import Path

from ..errors import BuildsysError
from ..hookspecs import CONTRACT_VERSION

TEMPLATES = Path(__file__).parent / "templates"
NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Kind:
    """What one ``--kind`` generates: its contract class and the words its README uses."""

    contract_class: str
    summary: str
    what: str
    next_steps: str


KINDS = {
    "stage": Kind("StageContract", "A buildsys backend: the stage ${name}.compress.",
                  "its kind and stage (usable here or not, and why)",
                  "replace the example stage in `src/${module}/__init__.py` with your backend's: "
                  "the kinds it consumes and produces, its options, its `requires`; keep the "
                  "contract test pointing at a tiny manifest that builds it."),
    "registry": Kind("RegistryContract", "A buildsys registry for ${scheme}:// URLs.",
                     "the registry scheme '${scheme}'",
                     "replace the folder operations with your service's client; for a registry "
                     "reached over HTTP, give the contract test a `fault_proxy` fixture "
                     "(`buildsys.testing.FaultProxy`) so the retry checks run too."),
    "executor": Kind("ExecutorContract", "A buildsys executor: --executor ${name}.",
                     "the executor '${name}'",
                     "make `start` submit the worker command where your jobs should run; if the "
                     "contract test needs a backend (a cluster), start it in an `executor_env` fixture."),
}


def generate(name: str, kind: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the plugin ``name`` of ``kind`` into ``parent/buildsys-NAME``; return it and its files."""
    values = _values(_check_name(name), kind)
    root = Path(parent) / values["dist"]
    if root.exists():
        raise BuildsysError(f"{root} already exists", hint="choose another name, or remove the folder")
    written = []
    for relpath, template in _layout(kind, values).items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(template, values))
        written.append(path)
    return root, written


def _check_name(name: str) -> str:
    if not NAME.match(name):
        raise BuildsysError(f"'{name}' is not a plugin name",
                            hint="use lowercase letters and digits, words joined by '_' (e.g. openvino, my_npu)")
    if importlib.util.find_spec(f"buildsys_{name}") is not None:
        raise BuildsysError(f"a module named buildsys_{name} is already installed",
                            hint="choose a name no installed plugin uses (see 'buildsys plugins')")
    return name


def _values(name: str, kind: str) -> dict[str, str]:
    if kind not in KINDS:
        raise BuildsysError(f"unknown plugin kind '{kind}'", hint=f"one of: {', '.join(KINDS)}")
    major, minor = CONTRACT_VERSION.split(".")[:2]
    values = {"name": name, "module": f"buildsys_{name}", "dist": f"buildsys-{name.replace('_', '-')}",
              "scheme": name.replace("_", "-"),  # URL schemes allow no '_'
              "Class": "".join(part.capitalize() for part in name.split("_")), "kind": kind,
              "contract": f">={major}.{minor},<{int(major) + 1}", "buildsys_range": f">={_buildsys_floor()}",
              "contract_class": KINDS[kind].contract_class}
    for field in ("summary", "what", "next_steps"):
        values[field] = string.Template(getattr(KINDS[kind], field)).substitute(values)
    return values


def _buildsys_floor() -> str:
    from .. import __version__

    return __version__


def _layout(kind: str, values: dict[str, str]) -> dict[str, str]:
    """Generated path -> template path, relative to TEMPLATES."""
    name, module = values["name"], values["module"]
    return {
        "pyproject.toml": "common/pyproject.toml.tmpl",
        "README.md": "common/README.md.tmpl",
        ".gitignore": "common/gitignore.tmpl",
        f"src/{module}/__init__.py": f"{kind}/plugin.py.tmpl",
        f"tests/test_{name}_contract.py": f"{kind}/test_contract.py.tmpl",
        f"tests/test_{name}_{kind}.py": f"{kind}/test_plugin.py.tmpl",
    }


def _render(template: str, values: dict[str, str]) -> str:
    try:
        return string.Template((TEMPLATES / template).read_text()).substitute(values)
    except (KeyError, ValueError) as exc:  # a template bug, not the user's
        raise RuntimeError(f"template {template} is broken: {exc}") from exc
