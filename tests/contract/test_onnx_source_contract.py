"""``framework: onnx``'s stages (onnx.import, onnx.reference) pass the stage contract suite,
on a two-layer graph written with onnx.helper."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildsys.testing import SharedStageContract, shared_build

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from onnx_files import mlp

MANIFEST = """
schema: 1
name: onnxsource
version: 1.0.0
model:
  framework: onnx
  entrypoint: mlp.onnx
  dims: {batch: {min: 1, opt: 2, max: 4}}
targets:
  portable: {format: onnx}
"""

shared_build = shared_build(MANIFEST, files={"mlp.onnx": mlp()})


class _Shared(SharedStageContract):
    manifest = MANIFEST
    files = {"mlp.onnx": mlp()}


class TestOnnxImport(_Shared):
    stage, target = "onnx.import", "portable"


class TestOnnxReference(_Shared):
    stage, target, final = "onnx.reference", "portable", False
