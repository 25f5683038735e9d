"""Tiny models and manifests for contract tests: small enough that a build takes seconds.

The model sources are text (written into the test's project), so importing this module
imports no ML framework.
"""

from __future__ import annotations

import textwrap

#: An 8 -> 16 -> 4 MLP with a fixed seed; ``build`` is the manifest's entrypoint.
TINY_TORCH_MODEL = '''\
"""A tiny torch model for buildsys contract tests."""

import torch
from torch import nn


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def build():
    torch.manual_seed(0)
    return TinyMLP().eval()
'''

TINY_TORCH_FILES = {"models/tiny.py": TINY_TORCH_MODEL}
TINY_TEXT_FILES = {"model.txt": "  Hello, contract.\n  Bonjour — ça va?\n"}


def _targets(targets: dict[str, str] | str) -> str:
    if isinstance(targets, str):
        return textwrap.indent(textwrap.dedent(targets).strip(), "  ")
    return "\n".join(f"  {name}: {spec}" for name, spec in targets.items())


def tiny_torch_manifest(targets: dict[str, str] | str, name: str = "tiny", extra: str = "") -> str:
    """A manifest for ``TINY_TORCH_FILES``: input ``x`` of shape [batch, 8], batch 1..4.

    ``targets`` maps target names to their YAML flow mappings (``{"portable": "{format: onnx}"}``),
    or is the YAML of the ``targets:`` block itself. ``extra`` is appended (e.g. a validation block).
    """
    return (f"schema: 1\nname: {name}\nversion: 1.0.0\nmodel:\n  framework: torch\n"
            f"  entrypoint: models/tiny.py:build\n  inputs: [{{name: x, dtype: float32, shape: [batch, 8]}}]\n"
            f"  dims: {{batch: {{min: 1, opt: 2, max: 4}}}}\ntargets:\n{_targets(targets)}\n{extra}")


def tiny_text_manifest(targets: dict[str, str] | str, name: str = "tiny") -> str:
    """A manifest for ``TINY_TEXT_FILES`` (the framework-free text plugin's model)."""
    return (f"schema: 1\nname: {name}\nversion: 1.0.0\nmodel: {{framework: text, entrypoint: model.txt}}\n"
            f"targets:\n{_targets(targets)}\n")
