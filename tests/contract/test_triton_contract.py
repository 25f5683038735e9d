"""The Triton repository stage passes the same contract suite a third-party stage would.

One build for the module: the tiny torch MLP's ONNX graph, wrapped in a repository served by
ONNX Runtime (native) and one served by the python backend.
"""

from __future__ import annotations

import pytest

from buildsys.testing import SharedStageContract, shared_build
from buildsys.testing.models import TINY_TORCH_FILES, tiny_torch_manifest

pytest.importorskip("torch")  # the torch and onnx extras are installed in CI: never skips there
pytest.importorskip("onnx")

MANIFEST = tiny_torch_manifest({"onnx": "{format: onnx}", "repo": "{format: triton, from: onnx}",
                                "python": "{format: triton, from: onnx, options: {triton: {backend: python}}}"},
                               name="tritoncontract")

shared_build = shared_build(MANIFEST, files=TINY_TORCH_FILES)


class TestTritonRepository(SharedStageContract):
    stage, target, manifest = "triton", "repo", MANIFEST


class TestTritonPythonRepository(SharedStageContract):
    stage, target, manifest = "triton", "python", MANIFEST
