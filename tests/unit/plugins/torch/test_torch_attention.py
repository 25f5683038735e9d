"""Attention traced as one opaque call and written back as ATen's (buildsys_torch.attention).

The failure it avoids needs torch < 2.13 (the lent GPU image's 2.11): there, this module exported
with a dynamic batch and a per-row padding mask fails 'Constraints violated (batch)' through
plain ``scaled_dot_product_attention`` (the flash backend's ``attn_mask.size(0) == 1`` check),
and 'Constraints violated (seq, total)' through the math backend's reshapes. Checked by hand with
torch 2.11 (the generation step, tiny Llama and Qwen2, fp32 and fp16); here: the program that
comes out holds ATen's op only, computes what eager does at every batch, and survives export again.
"""

import pytest

torch = pytest.importorskip("torch")

from buildsys_torch.attention import opaque, restore, traced_sdpa  # noqa: E402

SDPA = torch.ops.aten.scaled_dot_product_attention.default


class Attention(torch.nn.Module):
    def forward(self, x, mask):
        batch, seq, _ = x.shape
        q = x.view(batch, seq, 4, 16).transpose(1, 2)
        additive = torch.where(mask[:, None, None, :] > 0, 0.0, torch.finfo(x.dtype).min)
        out = traced_sdpa(q, q * 0.5, q + 1.0, attn_mask=additive, scale=0.25)
        return out.transpose(1, 2).clone(memory_format=torch.contiguous_format).reshape(batch, seq, 64)


def _inputs(batch: int, seq: int):
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[0, : seq // 2] = 0  # left padding on the first row
    return torch.randn(batch, seq, 64), mask


def _export(module):
    from buildsys_hf.step import export_context

    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=1, max=32)
    with export_context():
        program = torch.export.export(module, _inputs(2, 6), dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    return program


def _targets(program) -> list:
    return [n.target for n in program.graph.nodes if n.op == "call_function"]


def test_the_exported_program_holds_atens_attention_and_computes_what_eager_does():
    program = _export(Attention())
    assert program.graph_signature and restore(program) == 1
    assert SDPA in _targets(program)
    assert not any("buildsys" in str(t) for t in _targets(program))
    for batch, seq in ((1, 1), (1, 7), (5, 3)):
        x, mask = _inputs(batch, seq)
        torch.testing.assert_close(program.module()(x, mask), Attention()(x, mask))


def test_a_program_module_exports_again_through_the_opaque_op():
    program = _export(Attention())
    restore(program)
    module = program.module()
    assert opaque(module) == 1 and SDPA not in [n.target for n in module.graph.nodes]
    from buildsys_hf.step import export_context

    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=1, max=32)
    with export_context():
        again = torch.export.export(module, _inputs(3, 4), dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    assert restore(again) == 1 and SDPA in _targets(again)
    x, mask = _inputs(1, 5)
    torch.testing.assert_close(again.module()(x, mask), Attention()(x, mask))


def test_dropout_and_causal_calls_are_left_as_they_are():
    graph = torch.fx.Graph()
    q = graph.placeholder("q")
    graph.output(graph.call_function(SDPA, (q, q, q), {"is_causal": True}))
    module = torch.fx.GraphModule(torch.nn.Module(), graph)
    assert opaque(module) == 0 and SDPA in [n.target for n in module.graph.nodes]
