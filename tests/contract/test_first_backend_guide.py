"""docs/first-backend.md cannot rot: its files are written out, its commands run, its tests pass.

Code blocks whose info string names a file (```python file=PATH) are written to PATH in a
fresh folder; every ``$ command`` line of its console blocks is then run there, in order, with
the plugin loaded from that folder (``pip install -e .`` becomes ``PYTHONPATH`` plus
``BUILDSYS_PLUGIN_MODULES``: nothing is installed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the guide builds from a torch model: installed in CI
pytest.importorskip("onnxruntime")

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "first-backend.md"
BLOCK = re.compile(r"^```(\w+)(?: file=(\S+))?\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str | None, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in BLOCK.finditer(GUIDE.read_text())]


def commands() -> list[str]:
    return [line[2:].strip() for lang, _, body in blocks() if lang == "console"
            for line in body.splitlines() if line.startswith("$ ")]


@pytest.fixture(scope="module")
def guide(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first-backend")
    for _, name, body in blocks():
        if name:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(body)
    return root


def run(command: str, root: Path) -> subprocess.CompletedProcess:
    """One console line of the guide, as a reader who installed the plugin would see it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")])),
               BUILDSYS_PLUGIN_MODULES="buildsys_ortmobile", BUILDSYS_OUT=str(root / "artifacts"))
    env.pop("BUILDSYS_CACHE_DIR", None)
    argv = command.split()
    if argv[0] == "buildsys":
        argv = [sys.executable, "-m", "buildsys", *argv[1:]]
    elif argv[0] == "pytest":
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv[1:]]
    else:
        raise AssertionError(f"the guide runs a command this test does not know: {command}")
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_the_guide_has_its_files_and_commands():
    names = {name for _, name, _ in blocks() if name}
    assert names == {"src/buildsys_ortmobile/__init__.py", "pyproject.toml", "models/tiny.py", "manifest.yaml",
                     "tests/test_ortmobile.py"}
    assert commands() == ["pip install -e .", "buildsys plugins", "buildsys plan manifest.yaml",
                          "buildsys build manifest.yaml -j 2", "pytest"]


def test_every_command_of_the_guide_succeeds(guide):
    for command in commands():
        if command.startswith("pip install"):
            continue  # stands for the PYTHONPATH and BUILDSYS_PLUGIN_MODULES that run() sets
        result = run(command, guide)
        assert result.returncode == 0, f"$ {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        if command == "buildsys plugins":
            assert re.search(r"ortmobile\.convert\s+onnx -> ort\.format .* usable", result.stdout), result.stdout
        if command.startswith("pytest"):
            assert "6 passed" in result.stdout and "failed" not in result.stdout, result.stdout  # 5 contract + 1
    record = json.loads((guide / "artifacts" / "tiny" / "1.0.0" / "mobile" / "artifact.json").read_text())
    assert record["kind"] == "ort.format" and record["validation"]["status"] == "passed"
    [ort_file] = (guide / "artifacts" / "tiny" / "1.0.0" / "mobile").glob("*.ort")
    assert ort_file.read_bytes()[4:8] == b"ORTM", "not an ORT-format file"
    again = run("buildsys build manifest.yaml --json", guide)
    assert {n["status"] for n in json.loads(again.stdout)["result"]["nodes"].values()} <= {"cached", "resolved"}
