"""What torch.export's failures look like to a manifest user: dims by their manifest names,
guards at the model line, sizes the saved program takes and refuses."""

from __future__ import annotations

import pytest

from buildsys.manifest import ModelSpec

torch = pytest.importorskip("torch")
from buildsys_torch import export  # noqa: E402

MODEL = ModelSpec.model_validate({
    "framework": "torch", "entrypoint": "m.py:build",
    "inputs": [{"name": "tokens", "dtype": "float32", "shape": ["batch", "seq"]}],
    "dims": {"batch": {"min": 1, "opt": 2, "max": 4}, "seq": {"min": 2, "opt": 4, "max": 8}}})


class Double(torch.nn.Module):
    def forward(self, tokens):
        return tokens * 2


def test_exporter_source_expressions_become_manifest_dims():
    text = "Not all values of seq = L['args'][0].size()[1] satisfy (L['args'][0].size()[1] % 2) == 0; L['args'][3].size()[0]"
    assert export.in_dim_names(text, MODEL) == \
        "Not all values of seq = seq satisfy (seq % 2) == 0; L['args'][3].size()[0]"


def test_a_refused_size_names_the_dims_and_what_the_program_takes():
    from torch.export import Dim

    program = torch.export.export(Double(), (torch.ones(2, 4),), dynamic_shapes=(
        {0: Dim("batch", min=1, max=4), 1: Dim("seq", min=2, max=8)},))
    inside, outside = (torch.ones(2, 4),), (torch.ones(16, 4),)  # batch 16 is past the exported range
    with pytest.raises(Exception) as caught:
        program.module()(*outside)
    message = export._rejected(caught.value, outside, [inside, outside], program, MODEL)
    assert message.startswith("the exported program refuses inputs the manifest's dims allow (batch=16, seq=4)")
    assert "of the default samples it takes batch=2, seq=4; refuses batch=16, seq=4" in message
    assert "narrow the dims' ranges" in message
    assert " s0" not in message and " s1" not in message  # symbols are named after the manifest's dims
