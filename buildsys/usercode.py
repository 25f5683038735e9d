"""User code a manifest names (model entrypoints, not plugin entry points): the model builder,
samples and calibration-data functions, as ``path/to/file.py:function`` (relative to the
manifest) or ``package.module:function``.

Resolving one imports the user's module, so it happens only inside a stage, never while
planning; ``entrypoint_files`` finds the files whose bytes define it without importing anything.
Part of the public API (``buildsys.resolve_entrypoint`` and friends).
"""

from __future__ import annotations

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
    """The files whose bytes define the model: the entrypoint's file and its sibling modules."""
    module, _ = split_entrypoint(entrypoint)
    if is_file_entrypoint(module):
        path = (Path(root) / module).resolve()
        return sorted(p.resolve() for p in path.parent.glob("*.py"))
    path = _module_file(module)
    return [path] if path else []


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
    produced = resolve_entrypoint(model.samples, root)()
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
