"""User code a manifest names (model entrypoints, not plugin entry points): the model builder,
samples and calibration-data functions, as ``path/to/file.py:function`` (relative to the
manifest) or ``package.module:function``.

Resolving one imports the user's module, so it happens only inside a stage, never while
planning; ``entrypoint_files`` finds the files whose bytes define it without importing anything.
Part of the public API (``buildsys.resolve_entrypoint`` and friends).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from .errors import BuildsysError


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    module, sep, function = entrypoint.rpartition(":")
    if not sep or not module or not function:
        raise BuildsysError(f"entrypoint '{entrypoint}' must be 'path/to/file.py:function' or 'package.module:function'")
    return module, function


def is_file_entrypoint(module: str) -> bool:
    return module.endswith(".py") or "/" in module


def entrypoint_files(entrypoint: str, root: Path) -> list[Path]:
    """The files whose bytes define the model: the entrypoint's module and every module of the
    user's code it imports, transitively (``imported_files``), found without importing anything.

    Checks, from the syntax tree, that the file exists and defines the function, so a misspelled
    entrypoint fails at plan time, not half-way through a build."""
    module, function = split_entrypoint(entrypoint)
    if is_file_entrypoint(module):
        path = (Path(root) / module).resolve()
        if not path.is_file():
            raise BuildsysError(f"entrypoint '{entrypoint}': file {path} does not exist")
        check_defines(path, function, entrypoint)
        return imported_files(path, path.parent, None)  # its folder is put on sys.path
    path = _module_file(module)
    if path is None:
        return []
    if path.suffix != ".py":
        return [path]
    check_defines(path, function, entrypoint)
    top = module.split(".")[0]
    base = path.parents[len(module.split(".")) - (0 if path.name == "__init__.py" else 1)]
    return imported_files(path, base, top, module)


def imported_files(start: Path, base: Path, package: str | None, name: str | None = None) -> list[Path]:
    """``start`` and the user modules it imports, transitively: every ``import``/``from ...
    import`` anywhere in a module (inside functions too) that resolves to a file under ``base``
    (for a package entrypoint, inside its top-level ``package``), with the ``__init__.py`` of each
    package on the way. Third-party and standard-library modules are not the model's code; a
    module imported by a computed name (``importlib.import_module(f"...")``) cannot be seen."""
    base = Path(base).resolve()
    seen: dict[Path, str | None] = {}
    queue = [(Path(start).resolve(), name)] + (_module_paths(name, base) if name else [])  # its packages' __init__s run too
    while queue:
        path, module = queue.pop()
        if path in seen:
            continue
        seen[path] = module
        for imported in _imports(path, module):
            if package is not None and imported.split(".")[0] != package:
                continue
            queue += [(found, mod) for found, mod in _module_paths(imported, base)]
    return sorted(seen)


def _imports(path: Path, module: str | None) -> set[str]:
    """Dotted names ``path`` imports (``from a import b`` gives ``a`` and ``a.b``: b may be a module)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return set()
    package = (module or "").rpartition(".")[0] if path.name != "__init__.py" else (module or "")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parts = parts[:len(parts) - (node.level - 1)]
                origin = ".".join(filter(None, [*parts, origin]))
            if origin:
                names.add(origin)
            names.update(f"{origin}.{alias.name}" if origin else alias.name for alias in node.names if alias.name != "*")
    return names


def _module_paths(dotted: str, base: Path) -> list[tuple[Path, str]]:
    """The files importing ``dotted`` runs, under ``base``: each package's ``__init__.py`` on
    the way and the module itself (nothing if its first part is not under ``base``)."""
    found = []
    parts = dotted.split(".")
    for depth in range(1, len(parts) + 1):
        stem = base.joinpath(*parts[:depth])
        name = ".".join(parts[:depth])
        if (stem / "__init__.py").is_file():
            found.append(((stem / "__init__.py").resolve(), name))
        elif stem.with_suffix(".py").is_file():
            found.append((stem.with_suffix(".py").resolve(), name))
            break
        else:
            break
    return found


def check_defines(path: Path, function: str, entrypoint: str) -> None:
    """Refuse an entrypoint whose module plainly lacks ``function``: no top-level def, class,
    assignment or import binds the name. A module that could bind it dynamically (``from x import
    *``, a module ``__getattr__``, ``globals()`` writes) or that does not parse is left to import time."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return  # importing it gives the real error, with its line
    names = _top_level_names(tree)
    if names is None or function in names:
        return
    close = difflib.get_close_matches(function, sorted(n for n in names if not n.startswith("_")), n=1)
    defined = ", ".join(sorted(n for n in names if not n.startswith("_") and n[:1].islower())[:12])
    hint = f"did you mean '{close[0]}'?" if close else (f"{path.name} defines: {defined}" if defined else None)
    raise BuildsysError(f"entrypoint '{entrypoint}': {path.name} has no function '{function}'", hint=hint)


def _top_level_names(tree: ast.Module) -> set[str] | None:
    """Names a module binds at top level (into if/try blocks too); None if it may bind others."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("globals", "exec"):
            return None
    for node in _top_level_statements(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return None if "__getattr__" in names else names


def _top_level_statements(body: list[ast.stmt]):
    for node in body:
        yield node
        for block in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)) and hasattr(node, block):
                yield from _top_level_statements(getattr(node, block))
        for handler in getattr(node, "handlers", []) or []:
            yield from _top_level_statements(handler.body)


def _module_file(name: str) -> Path | None:
    """Locate ``package.module``'s source without importing it (importing could run torch)."""
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin != "built-in" else None
    for location in spec.submodule_search_locations or []:
        base = Path(location, *parts[1:])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def import_modules(names, root: Path) -> None:
    """Import the manifest's ``model.imports`` (``package.module`` or ``path/to/file.py``,
    relative to ``root``): modules that register a model's custom operators."""
    for name in names or ():
        if is_file_entrypoint(name):
            _import_file((Path(root) / name).resolve(), name)
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise BuildsysError(f"cannot import model.imports module '{name}': {exc}",
                                hint="name an installed module or a .py file relative to the manifest") from None


def import_files(names, root: Path) -> list[Path]:
    """The files ``model.imports`` names (a module's source, a file's folder of .py files)."""
    files = []
    for name in names or ():
        if is_file_entrypoint(name):
            files += sorted(p.resolve() for p in (Path(root) / name).resolve().parent.glob("*.py"))
        elif (path := _module_file(name)) is not None:
            files.append(path)
    return files


def resolve_entrypoint(entrypoint: str, root: Path):
    """Import the entrypoint's module (from a file or by name) and return the function."""
    module_name, function = split_entrypoint(entrypoint)
    if is_file_entrypoint(module_name):
        module = _import_file((Path(root) / module_name).resolve(), entrypoint)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BuildsysError(f"cannot import entrypoint module '{module_name}': {exc}") from None
    try:
        return getattr(module, function)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise BuildsysError(f"entrypoint '{entrypoint}': module has no function '{function}'",
                            hint=f"callables there: {', '.join(names[:12]) or 'none'}") from None


def _import_file(path: Path, entrypoint: str):
    if not path.is_file():
        raise BuildsysError(f"entrypoint file {path} does not exist")
    name = "buildsys_model_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # let the model import its sibling modules
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise BuildsysError(f"importing entrypoint '{entrypoint}' raised {type(exc).__name__}: {exc}",
                            where=user_frame(exc, path.parent)) from None
    sys.modules[name] = module
    return module


def user_frame(exc: BaseException, root: Path) -> str | None:
    """``file:line`` of the innermost traceback frame inside ``root`` (the user's model code)."""
    root = str(Path(root).resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(root)]
    if not frames:
        return None
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} ({(frame.line or '').strip()})"


def model_files(model, root: Path) -> list[Path]:
    """The files a model source's fingerprint usually covers: the entrypoint's module and its
    siblings, the samples entrypoint's, and the weights file (``SourceSpec.fingerprint``)."""
    if not model.entrypoint:
        raise BuildsysError(f"framework '{model.framework}' needs model.entrypoint (its code), and the manifest gives none",
                            hint="add 'entrypoint: path/to/file.py:function'")
    files = entrypoint_files(model.entrypoint, root)
    if model.samples:
        files += entrypoint_files(model.samples, root)
    if model.weights:
        files.append(model.weights_path(root))
    return files + import_files(getattr(model, "imports", ()), root)


def load_samples(model, root: Path) -> list[list] | None:
    """The manifest's ``samples`` entrypoint's output, each sample a list of values in the
    manifest's input order (None when the manifest names no samples entrypoint).

    A sample may be a dict keyed by input name, a list/tuple in input order, or one value for a
    single-input model; the values are left as the entrypoint made them (arrays, tensors).
    """
    if not model.samples:
        return None
    function = resolve_entrypoint(model.samples, root)
    try:
        produced = list(function())
    except Exception as exc:  # the user's code: name the entrypoint and its line, not our frames
        raise BuildsysError(f"samples entrypoint '{model.samples}' raised {type(exc).__name__}: {exc}",
                            where=user_frame(exc, root),
                            hint="it must return (or yield) samples: dicts keyed by input name, or lists in "
                                 "the manifest's input order") from None
    return [_sample_values(model, sample, i) for i, sample in enumerate(produced)]


def _sample_values(model, sample, index: int) -> list:
    if isinstance(sample, dict):
        missing = [s.name for s in model.inputs if s.name not in sample]
        if missing:
            raise BuildsysError(f"sample {index} lacks input(s) {', '.join(missing)}")
        sample = [sample[s.name] for s in model.inputs]
    elif not isinstance(sample, (tuple, list)):
        sample = [sample]
    if len(sample) != len(model.inputs):
        raise BuildsysError(f"sample {index} has {len(sample)} values, the manifest declares {len(model.inputs)} inputs")
    return list(sample)
