"""The torch plugin's stages, and the builtin validate stage, pass the stage contract.

One build of the test kit's tiny torch model is shared by the module: its torch.export
program, its fp16 and bf16 lowerings, the eager reference outputs, the validations, and an
AOTInductor package for this CPU (the slow one: it compiles C++).
"""

from __future__ import annotations

import pytest

from buildsys.testing import TINY_TORCH_FILES, SharedStageContract, shared_build, tiny_torch_manifest

pytest.importorskip("torch")  # the torch extra is installed in CI: this never skips there

MANIFEST = tiny_torch_manifest({"exported": "{format: torch.exported}", "aoti": "{format: aoti, hardware: cpu}",
                                "fp16": "{format: torch.exported, precision: fp16}",
                                "bf16": "{format: torch.exported, precision: bf16}"},
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


class TestTorchFp16(_Shared):
    stage, target = "torch.fp16", "fp16"


class TestTorchBf16(_Shared):
    stage, target = "torch.bf16", "bf16"


@pytest.mark.slow
class TestTorchAoti(_Shared):
    stage, target = "torch.aoti", "aoti"
