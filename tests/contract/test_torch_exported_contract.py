"""``framework: torch.exported``'s stages (torch.import, torch.exported.reference) pass the stage
contract suite, on a two-layer program saved with torch.export.save in the module's fixture."""

from __future__ import annotations

import textwrap

import pytest

from buildsys.testing import ProjectDir, SharedStageContract

torch = pytest.importorskip("torch")  # the torch extra is installed in CI: this never skips there

MANIFEST = """
schema: 1
name: pt2contract
version: 1.0.0
model:
  framework: torch.exported
  entrypoint: mlp.pt2
  inputs: [{name: x, dtype: float32, shape: [batch, 8]}]
  dims: {batch: {min: 1, opt: 2, max: 4}}
targets:
  exported: {format: torch.exported}
"""


@pytest.fixture(scope="module")
def shared_build(tmp_path_factory):
    """One build for the module, from a program saved here (a .pt2 cannot be written at import)."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    batch = torch.export.Dim("batch", min=1, max=16)
    project = ProjectDir(tmp_path_factory.mktemp("shared") / "project")
    project.root.mkdir(parents=True, exist_ok=True)
    torch.export.save(torch.export.export(module, (torch.randn(2, 8),), dynamic_shapes=({0: batch},)),
                      str(project.root / "mlp.pt2"))
    path = project.manifest(textwrap.dedent(MANIFEST))
    return project, path, project.cli("build", path.name).assert_ok()


class _Shared(SharedStageContract):
    manifest = MANIFEST


class TestTorchImport(_Shared):
    stage, target = "torch.import", "exported"


class TestTorchExportedReference(_Shared):
    stage, target, final = "torch.exported.reference", "exported", False
