"""The nevers of the layout, read from the source (AST), so a violation fails before it runs:

- the core (``buildsys/`` but its ``cli`` and ``testing`` packages) imports no ``buildsys.cli``,
  no ``buildsys.testing`` and no plugin (``buildsys_*``), by statement or by name in
  ``importlib.import_module`` / ``runpy.run_module`` / ``__import__`` / ``python -m``;
- ``hookspecs.py`` imports only records (the modules whose types hooks pass);
- plugins reach no private module of buildsys, by statement or by such a name;
- the import graph of ``buildsys/`` and of each first-party plugin has no circle (imports under
  ``if TYPE_CHECKING:`` are not executed and are left out).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import buildsys

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "buildsys"
PLUGINS = REPO / "plugins"
FIRST_PARTY = sorted(p.name for p in PLUGINS.iterdir() if p.name.startswith("buildsys_") and p.is_dir())
#: The modules whose types hooks pass; hookspecs.py may import these and nothing else of buildsys.
RECORDS = {"buildsys.records", "buildsys.graph", "buildsys.hardware", "buildsys.specs"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in (getattr(test, "id", ""), getattr(test, "attr", ""))


def runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking(node):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imported(path: Path, root: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports at run time (relative imports resolved)."""
    me = module_name(path, root).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    names = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            submodules = {f"{base}.{a.name}" for a in node.names if _is_module(root, f"{base}.{a.name}")}
            names.update(submodules)
            if len(submodules) < len(node.names):  # also names defined in the module itself
                names.add(base)
                names.update(f"{base}.{a.name}" for a in node.names)
    return names | named_in_strings(path)


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


_LOADERS = {"import_module", "run_module", "__import__", "find_spec"}


def named_in_strings(path: Path) -> set[str]:
    """Modules named by a string where it is loaded: importlib/runpy calls and ``-m NAME``."""
    names = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = getattr(func, "attr", None) or getattr(func, "id", None)
        if called in _LOADERS and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
        for arg in node.args:
            if isinstance(arg, (ast.List, ast.Tuple)):
                items = [e.value if isinstance(e, ast.Constant) else None for e in arg.elts]
                names.update(str(b) for a, b in zip(items, items[1:]) if a == "-m" and b)
    return names


def core_files() -> list[Path]:
    """``buildsys/`` but the command line (``cli/``, ``__main__.py``) and the test kit."""
    return [p for p in CORE.rglob("*.py") if p.relative_to(CORE).parts[0] not in ("cli", "testing", "__main__.py")]


def forbidden_in_core(name: str) -> bool:
    return (name.split(".")[0].startswith("buildsys_") or name.startswith("buildsys.cli")
            or name.startswith("buildsys.testing"))


def test_the_core_imports_no_cli_no_test_kit_and_no_plugin():
    offenders = {str(p.relative_to(REPO)): sorted(n for n in imported(p, REPO) if forbidden_in_core(n))
                 for p in core_files()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_hookspecs_imports_only_records():
    names = {n for n in imported(CORE / "hookspecs.py", REPO) if n.startswith("buildsys")}
    tree = ast.parse((CORE / "hookspecs.py").read_text())
    checked = {n for node in ast.walk(tree) if _type_checking(node)
               for n in imported_in(node, "buildsys")}
    assert names <= {"buildsys"} and checked <= RECORDS, (names, checked)


def imported_in(node: ast.If, package: str) -> set[str]:
    """Modules a ``TYPE_CHECKING`` block of a module directly inside ``package`` imports."""
    out = set()
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom) and child.level == 1:
            out.add(f"{package}.{child.module}")
    return out


def private_reach(path: Path) -> list[str]:
    """What of buildsys a plugin file reaches beyond the public face (its tests may use the kit)."""
    in_tests = "tests" in path.relative_to(PLUGINS).parts
    allowed = {"buildsys", "buildsys.__all__"} | ({"buildsys.testing"} if in_tests else set())
    reached = {n.rsplit(".", 1)[0] if n.rsplit(".", 1)[-1] in buildsys.__all__ else n for n in imported(path, REPO)}
    return sorted(n for n in reached if n.split(".")[0] == "buildsys" and n not in allowed
                  and not n.startswith("buildsys.testing." if in_tests else "\0"))


def test_plugins_reach_no_private_module_also_through_strings():
    offenders = {str(p.relative_to(REPO)): private_reach(p) for p in PLUGINS.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_checks_can_fail(tmp_path):
    bad = tmp_path / "plugins" / "buildsys_bad" / "__init__.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("import runpy, importlib, subprocess, sys\n"
                   "runpy.run_module('buildsys.worker')\n"
                   "importlib.import_module('buildsys.cache')\n"
                   "subprocess.run([sys.executable, '-m', 'buildsys.cli.app'])\n"
                   "from buildsys import hookimpl\n"
                   "if TYPE_CHECKING:\n    import buildsys.plan\n")
    names = imported(bad, tmp_path)
    assert {"buildsys.worker", "buildsys.cache", "buildsys.cli.app", "buildsys"} <= names
    assert "buildsys.plan" not in names and forbidden_in_core("buildsys.cli.app") and forbidden_in_core("buildsys_x")


# -- no circles -----------------------------------------------------------------------------------


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports at run time."""
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = set()
        for target in imported(path, root):
            while target and target not in files:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on.add(nxt)
                work.append((nxt, iter(sorted(graph[nxt]))))
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
    return out


def test_the_core_import_graph_has_no_circle():
    assert cycles(import_graph(REPO, "buildsys")) == []


@pytest.mark.parametrize("plugin", FIRST_PARTY)
def test_no_first_party_plugin_has_an_import_circle(plugin):
    assert cycles(import_graph(PLUGINS, plugin)) == []


def test_the_circle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
