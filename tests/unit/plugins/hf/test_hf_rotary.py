"""Older transformers' rotary embedding (angles as a batched matmul) gets the broadcast forward,
which gives the same angles and lets a dynamic batch export (torch's matmul decomposition guards
the matmul form on batch != 1)."""

import pytest

torch = pytest.importorskip("torch")

from buildsys_hf.rotary import broadcast_rotary  # noqa: E402


class MatmulRotary(torch.nn.Module):
    """The rotary embedding as transformers 5.17 writes it (rope_type default)."""

    def __init__(self, dim: int = 8, scaling: float = 1.0):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)))
        self.attention_scaling, self.rope_type = scaling, "default"

    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].expand(position_ids.shape[0], -1, 1).to(dtype=torch.float)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


class FloatMatmulRotary(MatmulRotary):
    """Qwen2's form of it (5.17): both sides cast again inside the product."""

    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1).to(x.device)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


FORMS = pytest.mark.parametrize("form", [MatmulRotary, FloatMatmulRotary], ids=["llama", "qwen2"])


class Model(torch.nn.Module):
    def __init__(self, rope_type: str = "default", form=MatmulRotary):
        super().__init__()
        self.rotary = form(scaling=0.5)
        self.rotary.rope_type = rope_type

    def forward(self, x, position_ids):
        cos, sin = self.rotary(x, position_ids)
        return x * cos + sin


def _export(model):
    """As the generation step is exported: with torch's size-oblivious reasoning (step.export_context)."""
    from buildsys_hf.step import export_context

    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=1, max=64)
    x, positions = torch.randn(2, 5, 8), torch.arange(5).repeat(2, 1)
    with export_context():
        return torch.export.export(model, (x, positions), dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))


@FORMS
def test_the_broadcast_forward_gives_the_same_angles(form):
    model = Model(form=form)
    x, positions = torch.randn(3, 7, 8), torch.tensor([[0, 0, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6], [0] * 7])
    before = model(x, positions)
    assert broadcast_rotary(model) == 1
    torch.testing.assert_close(model(x, positions), before)


@FORMS
def test_a_dynamic_batch_exports_once_patched(form):
    with pytest.raises(Exception, match="batch"):  # the matmul form: a batch != 1 guard
        _export(Model(form=form))
    model = Model(form=form)
    broadcast_rotary(model)
    program = _export(model)
    x, positions = torch.randn(1, 4, 8), torch.arange(4)[None]
    torch.testing.assert_close(program.module()(x, positions), model(x, positions))


def test_other_rope_types_keep_their_forward():
    assert broadcast_rotary(Model(rope_type="dynamic")) == 0
