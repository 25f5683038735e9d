"""What the CLI and worker processes import, read from ``BUILDSYS_TRACE_IMPORTS``.

The driver process must never import an ML framework (only workers run stages) and ``--help``
must stay light. (That every module imports without warnings is a meta-test, tests/meta.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path


HEAVY = {"torch", "onnx", "onnxruntime", "tensorrt", "tensorrt_rtx", "jax", "jaxlib", "tensorflow"}

MANIFEST = """
schema: 1
name: imports
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets:
  normalized: {format: text}
  lowercase:  {format: text, options: {text.normalize: {lowercase: true}}}
  ascii:      {format: text, precision: int8}
  stats:      {format: text.stats}
  stamped:    {format: text.stamped}
  native:     {format: text.bin, hardware: cpu}
  rtx-pack:   {format: text.pack, hardware: [sm86, sm89]}
"""

NODES = 7  # normalize x2 (plain, lowercase), ascii, wordcount, stamp, compile, pack


def read_trace(path: Path) -> list[dict]:
    assert path.exists(), f"BUILDSYS_TRACE_IMPORTS wrote nothing to {path}"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def heavy(entry: dict) -> list[str]:
    """The ML frameworks (top-level packages) a traced process imported."""
    return sorted({m.split(".")[0] for m in entry["modules"]} & HEAVY)


def by_process(entries: list[dict], process: str) -> list[dict]:
    return [e for e in entries if e["process"] == process]


def traced_cli(project, trace: Path, *args: str):
    return project.cli(*args, env={"BUILDSYS_TRACE_IMPORTS": str(trace)})


# -- (a) and (b): builds ---------------------------------------------------------------------


def test_cold_build_cli_and_workers_import_no_ml_framework(buildsys_project, tmp_path):
    buildsys_project.manifest(MANIFEST, files={"model.txt": "Hello, world.\n"})
    trace = tmp_path / "cold.jsonl"
    result = traced_cli(buildsys_project, trace, "build", "manifest.yaml", "-j", "2").assert_ok()
    result.assert_nodes(built=NODES, cached=0, failed=0)
    entries = read_trace(trace)
    [cli] = by_process(entries, "cli")
    workers = by_process(entries, "worker")
    assert cli["argv"][0] == "build" and "buildsys.builder" in cli["modules"]
    assert sorted(w["node"] for w in workers) == result.nodes("built")
    # a worker runs as ``python -m buildsys.worker``: its own module is __main__
    assert all({"buildsys.context", "buildsys_text"} <= set(w["modules"]) for w in workers)
    assert heavy(cli) == [], f"the build's CLI process imported {heavy(cli)}"
    assert {w["node"]: heavy(w) for w in workers if heavy(w)} == {}


def test_noop_rebuild_cli_imports_no_ml_framework(buildsys_project, tmp_path):
    buildsys_project.manifest(MANIFEST, files={"model.txt": "Hello, world.\n"})
    buildsys_project.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    trace = tmp_path / "noop.jsonl"
    result = traced_cli(buildsys_project, trace, "build", "manifest.yaml", "-j", "2").assert_ok()
    result.assert_nodes(built=0, cached=NODES)
    entries = read_trace(trace)
    [cli] = by_process(entries, "cli")
    assert by_process(entries, "worker") == [], "a no-op rebuild started a worker"
    assert cli["argv"][0] == "build" and "buildsys.builder" in cli["modules"]
    assert heavy(cli) == [], f"the no-op rebuild's CLI process imported {heavy(cli)}"


# -- (c): --help -----------------------------------------------------------------------------


def test_help_imports_no_ml_framework_and_no_manifest(buildsys_project, tmp_path):
    trace = tmp_path / "help.jsonl"
    result = traced_cli(buildsys_project, trace, "--help").assert_ok()
    assert "Commands:" in result.stdout
    [cli] = by_process(read_trace(trace), "cli")
    assert cli["argv"] == ["--help"] and "buildsys.cli.app" in cli["modules"]
    assert heavy(cli) == [], f"--help imported {heavy(cli)}"
    assert "buildsys.manifest" not in cli["modules"], "--help imported buildsys.manifest (pydantic models, yaml)"


def test_trace_catches_a_plugin_that_imports_a_framework(buildsys_project, tmp_path):
    """The checks above can fail: a -p plugin importing (a stand-in) torch shows up in the trace."""
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("")
    (site / "heavy_plugin.py").write_text("import torch  # noqa: F401\n")
    trace = tmp_path / "heavy.jsonl"
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    buildsys_project.cli("-p", "heavy_plugin", "plugins",
                         env={"BUILDSYS_TRACE_IMPORTS": str(trace), "PYTHONPATH": pythonpath}).assert_ok()
    [cli] = by_process(read_trace(trace), "cli")
    assert heavy(cli) == ["torch"]
