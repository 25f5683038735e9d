"""The torch plugin's stages, and the builtin validate stage, pass the stage contract.

One build of the test kit's tiny torch model is shared by the module: its torch.export
program, the eager reference outputs, the validations, and an AOTInductor package for this
CPU (the slow one: it compiles C++).
"""

from __future__ import annotations

import pytest

from buildsys.testing import TINY_TORCH_FILES, SharedStageContract, shared_build, tiny_torch_manifest

pytest.importorskip("torch")  # the torch extra is installed in CI: this never skips there

MANIFEST = tiny_torch_manifest({"exported": "{format: torch.exported}", "aoti": "{format: aoti, hardware: cpu}"},
                               name="torchcontract")


shared_build = shared_build(MANIFEST, files=TINY_TORCH_FILES)


class _Shared(SharedStageContract):
    manifest, files = MANIFEST, TINY_TORCH_FILES


class TestTorchExport(_Shared):
    stage, target = "torch.export", "exported"


class TestTorchReference(_Shared):
    stage, target, final = "torch.reference", "exported", False


class TestValidate(_Shared):
    stage, target, final = "validate", "exported", False


@pytest.mark.slow
class TestTorchAoti(_Shared):
    stage, target = "torch.aoti", "aoti"
