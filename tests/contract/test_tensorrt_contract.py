"""The TensorRT stage passes the same contract suite a third-party stage would.

Built once for the module with TensorRT-RTX (no GPU needed) at optimization level 0; the
contract's ``built`` fixture is overridden to hand the build out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.testing import SharedStageContract, shared_build

pytest.importorskip("torch")  # the torch, onnx and tensorrt extras are installed in CI: never skips there
pytest.importorskip("onnx")
pytest.importorskip("tensorrt_rtx")

MODELS = Path(__file__).resolve().parents[1] / "models"

MANIFEST = """
schema: 1
name: trtcontract
version: 1.0.0
model:
  framework: torch
  entrypoint: models/onnx_cases.py:build
  inputs: [{name: images, dtype: float32, shape: [batch, 3, 8, 8]}]
  dims: {batch: {min: 1, opt: 2, max: 4}}
targets:
  engine: {format: tensorrt, hardware: [sm86, sm89], options: {tensorrt.plan: {optimization_level: 0}}}
"""


shared_build = shared_build(MANIFEST, copy=MODELS, args=())


class TestTensorrtPlan(SharedStageContract):
    stage, target, manifest = "tensorrt.plan", "engine", MANIFEST
