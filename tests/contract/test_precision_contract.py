"""The precision plugin's stages pass the same contract suite a third-party stage would, on the
tiny per-token MLP of tests/models/precision_cases.py, built once for the module."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.testing import SharedStageContract, shared_build

pytest.importorskip("modelopt")  # the precision extra is installed in CI: this never skips there

MODELS = Path(__file__).resolve().parents[1] / "models"

MANIFEST = """
schema: 1
name: precisioncontract
version: 1.0.0
model:
  framework: torch
  entrypoint: models/precision_cases.py:build
  inputs: [{name: x, dtype: float32, shape: [batch, seq, 16]}]
  dims: {batch: {min: 1, opt: 2, max: 4}, seq: {min: 1, opt: 8, max: 16}}
calibration: {data: models/precision_cases.py:calibration, samples: 16, method: max}
targets:
  int8: {format: onnx, precision: int8}
  fp16: {format: onnx, precision: fp16}
  bf16: {format: onnx, precision: bf16}
"""


shared_build = shared_build(MANIFEST, copy=MODELS)


class _Shared(SharedStageContract):
    manifest = MANIFEST


class TestOnnxInt8(_Shared):
    stage, target = "onnx.int8", "int8"


class TestOnnxFp16(_Shared):
    stage, target = "onnx.fp16", "fp16"


class TestOnnxBf16(_Shared):
    stage, target = "onnx.bf16", "bf16"
