"""Meta-test: every module of buildsys and of the framework-free plugin imports cleanly with
warnings as errors (a deprecation in a dependency shows up here first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import buildsys
import buildsys_text


def module_names(package) -> list[str]:
    root = Path(package.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return [n for n in names if not n.endswith(".__main__")]  # __main__ runs the CLI


IMPORT_ALL = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        failed.append(name + ":\\n" + traceback.format_exc(limit=3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_with_warnings_as_errors():
    names = module_names(buildsys) + module_names(buildsys_text)
    assert {"buildsys.worker", "buildsys.cli.app", "buildsys.testing.plugin", "buildsys_text"} <= set(names)
    proc = subprocess.run([sys.executable, "-W", "error", "-c", IMPORT_ALL, *names],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, f"modules failed to import with -W error:\n{proc.stdout}{proc.stderr}"
