"""The ONNX plugin's stages pass the same contract suite a third-party stage would.

One project is built once for the module (torch.export, ONNX export and ORT optimization
take seconds each); the contract's ``built`` fixture is overridden to hand it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.testing import SharedStageContract, shared_build

pytest.importorskip("torch")  # the torch and onnx extras are installed in CI: this never skips there
pytest.importorskip("onnxruntime")

MODELS = Path(__file__).resolve().parents[1] / "models"

MANIFEST = """
schema: 1
name: onnxcontract
version: 1.0.0
model:
  framework: torch
  entrypoint: models/onnx_cases.py:build
  inputs: [{name: images, dtype: float32, shape: [batch, 3, 8, 8]}]
  dims: {batch: {min: 1, opt: 2, max: 4}}
targets:
  portable: {format: onnx}
  optimized: {format: onnx.ort}
"""


shared_build = shared_build(MANIFEST, copy=MODELS)


class _Shared(SharedStageContract):
    manifest = MANIFEST


class TestOnnxExport(_Shared):
    stage, target = "onnx.export", "portable"


class TestOnnxOrt(_Shared):
    stage, target = "onnx.ort", "optimized"
