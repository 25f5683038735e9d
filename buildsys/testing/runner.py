"""An isolated project folder and a CLI runner that runs the real ``buildsys`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ..cli.common import command_of


@dataclass
class CliResult:
    """What one ``buildsys`` invocation did. ``summary`` is ``build --json``'s output, if any."""

    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    summary: dict = field(default_factory=dict)

    def nodes(self, status: str) -> list[str]:
        return sorted(n for n, o in self.summary.get("nodes", {}).items() if o["status"] == status)

    def assert_nodes(self, built=None, cached=None, failed=None, skipped=None) -> None:
        """Assert which nodes ended how. Each argument is a count, or a list of node ids or
        stage names (a stage name matches every node of that stage), compared exactly."""
        for status, expected in (("built", built), ("cached", cached), ("failed", failed), ("skipped", skipped)):
            if expected is None:
                continue
            actual = self.nodes(status)
            if isinstance(expected, int):
                assert len(actual) == expected, f"{status}: expected {expected} nodes, got {actual}\n{self.stderr}"
            else:
                stages = sorted(n.split("#")[0] for n in actual)
                assert sorted(expected) in (actual, stages), f"{status}: expected {sorted(expected)}, got {actual}\n{self.stderr}"

    def assert_ok(self) -> CliResult:
        assert self.exit_code == 0, f"buildsys {' '.join(self.args)} exited {self.exit_code}\n{self.stderr}"
        return self

    def assert_error(self, exit_code: int, *fragments: str) -> CliResult:
        """One expected error: the exit code, no traceback, and every fragment in stderr."""
        assert self.exit_code == exit_code, f"expected exit {exit_code}, got {self.exit_code}\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        for fragment in fragments:
            assert fragment in self.stderr, f"{fragment!r} not in stderr:\n{self.stderr}"
        return self


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> CliResult:
    """Run ``python -m buildsys ARGS`` in ``cwd``; a ``build`` gets ``--json`` for ``nodes()``."""
    argv = [str(a) for a in args]
    is_build = command_of(argv) == "build"
    if is_build and "--json" not in argv:
        argv.append("--json")
    proc = subprocess.run([sys.executable, "-m", "buildsys", *argv], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    summary = json_result(proc.stdout) if is_build else {}
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr, summary)


def json_result(stdout: str) -> dict:
    """The ``result`` of the JSON envelope a ``--json`` command printed (``{}`` if none)."""
    if not stdout.strip().startswith("{"):
        return {}
    return json.loads(stdout).get("result") or {}


class ProjectDir:
    """A throwaway project: manifests and model files in ``root``, artifacts and cache inside."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.env = {"BUILDSYS_OUT": str(self.root / "artifacts"),
                    "BUILDSYS_CACHE_DIR": str(self.root / "artifacts" / ".cache")}

    @property
    def out(self) -> Path:
        return self.root / "artifacts"

    @property
    def cache(self) -> Path:
        return self.out / ".cache"

    def write(self, relpath: str, content: str | bytes) -> Path:
        """Write a file under ``root``: text is dedented, bytes are written as they are."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"))
        return path

    def manifest(self, text: str, name: str = "manifest.yaml", files: dict[str, str | bytes] | None = None) -> Path:
        for relpath, content in (files or {}).items():
            self.write(relpath, content)
        return self.write(name, text)

    def cli(self, *args: str, env: dict | None = None, timeout: float = 300) -> CliResult:
        return run_cli(*args, cwd=self.root, env={**self.env, **(env or {})}, timeout=timeout)

    def target_dir(self, name: str, version: str, target: str) -> Path:
        return self.out / name / version / target

    def lock(self, manifest: str = "manifest.yaml") -> Path:
        return (self.root / manifest).with_suffix(".lock")
