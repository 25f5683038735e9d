"""The fp16/bf16 graph rewrite (buildsys_torch.lower.lower_graph) on a program's own graph."""

import pytest

torch = pytest.importorskip("torch")

from buildsys_torch.lower import lower_graph  # noqa: E402
from torch import nn  # noqa: E402


class Masked(nn.Module):
    """The padding mask models build: float32's minimum where a key is masked."""

    def forward(self, x, keep):
        return torch.where(keep, x, torch.finfo(torch.float32).min).softmax(-1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_float32_mask_value_becomes_the_lowered_dtypes_own_extreme(dtype):
    x, keep = torch.randn(2, 4), torch.tensor([[True, True, False, False], [True, False, True, False]])
    gm = torch.export.export(Masked(), (x, keep)).module()
    lower_graph(gm, dtype)
    scalars = [a for n in gm.graph.nodes if n.op == "call_function" for a in n.args if isinstance(a, float)]
    # CUDA refuses float32's minimum for a half tensor ("cannot be converted ... without overflow");
    # the CPU turns it into -inf, so a row masked everywhere would give NaN after softmax
    assert scalars == [torch.finfo(dtype).min]
    out = gm(x.to(dtype), keep)
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert torch.allclose(out.float(), Masked()(x.to(dtype).float(), keep), atol=1e-2)


def test_ordinary_scalars_and_infinities_are_left_as_they_are():
    class Scaled(nn.Module):
        def forward(self, x):
            return torch.clamp(x * 0.125, min=float("-inf"), max=1e4) + 1e-6

    gm = torch.export.export(Scaled(), (torch.randn(3),)).module()
    before = [a for n in gm.graph.nodes if n.op == "call_function" for a in (*n.args, *n.kwargs.values())
              if isinstance(a, float)]
    lower_graph(gm, torch.float16)
    after = [a for n in gm.graph.nodes if n.op == "call_function" for a in (*n.args, *n.kwargs.values())
             if isinstance(a, float)]
    assert after == before and 0.125 in after
