from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

HELLO = """
schema: 1
name: hello
version: 1.0.0
model:
  framework: text
  entrypoint: model.txt
targets:
  normalized: {format: text}
  lowercase:  {format: text, options: {text.normalize: {lowercase: true}}}
  ascii:      {format: text, precision: int8}
  stats:      {format: text.stats}
  stamped:    {format: text.stamped}
  native:     {format: text.bin, hardware: cpu}
"""

MODEL_TEXT = "  Hello, world.\n  Bonjour le monde — ça va?\n"


@pytest.fixture
def hello(buildsys_project):
    """The isolated project with a six-target text manifest written as manifest.yaml."""
    buildsys_project.manifest(HELLO, files={"model.txt": MODEL_TEXT})
    return buildsys_project
