"""A model's fingerprint is the code it imports: an unrelated file beside it rebuilds nothing,
an edit in a module it imports (lazily, or through a package) rebuilds it; the lock lists them."""

from __future__ import annotations

import tomllib

import pytest

pytest.importorskip("torch")

MANIFEST = """
schema: 1
name: fp
version: 1.0.0
model:
  framework: torch
  entrypoint: models/net.py:build
  inputs: [{name: x, dtype: float32, shape: [batch, 4]}]
  dims: {batch: {min: 1, opt: 2, max: 4}}
targets:
  exported: {format: exported}
"""

NET = """import torch
from blocks import Block


def build():
    from heads import scale  # imported lazily: still the model's code
    torch.manual_seed(0)
    return torch.nn.Sequential(Block(), torch.nn.Linear(4, 2)) if scale() else None
"""

FILES = {"models/net.py": NET,
         "models/blocks/__init__.py": "from .block import Block\n",
         "models/blocks/block.py": "import torch\n\n\nclass Block(torch.nn.Linear):\n    def __init__(self):\n        super().__init__(4, 4)\n",
         "models/heads.py": "def scale():\n    return 1\n",
         "models/unrelated.py": "VALUE = 1\n"}


def statuses(project) -> set[str]:
    out = project.cli("plan", "manifest.yaml").assert_ok().stdout
    return {line.split()[0] for line in out.splitlines()[1:] if line.startswith("  ")}


def test_the_fingerprint_follows_imports_not_the_folder(buildsys_project):
    project = buildsys_project
    project.manifest(MANIFEST, files=FILES)
    project.cli("build", "manifest.yaml").assert_ok()
    source = tomllib.loads(project.lock().read_text())["nodes"]["source:torch"]
    assert [f["name"] for f in source["files"]] == ["models/blocks/__init__.py", "models/blocks/block.py",
                                                    "models/heads.py", "models/net.py"], \
        "the lock lists the model's own modules (with their sha256), not unrelated.py"
    (project.root / "models" / "unrelated.py").write_text("VALUE = 2\n")
    (project.root / "models" / "scratch.py").write_text("print('a new file beside the model')\n")
    assert statuses(project) == {"source", "cached"}, "files the model does not import change nothing"
    (project.root / "models" / "blocks" / "block.py").write_text(FILES["models/blocks/block.py"] + "# edited\n")
    assert "will" in statuses(project), "an edit inside a package the model imports rebuilds it"
    project.cli("build", "manifest.yaml").assert_ok()
    (project.root / "models" / "heads.py").write_text("def scale():\n    return 2\n")
    assert "will" in statuses(project), "so does an edit in a module imported inside the entrypoint function"
