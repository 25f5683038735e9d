"""The generation step's soft-capped attention (Gemma2): its maths. That the step exports for
prefill and decode at once is checked on a tiny Gemma2 by tests/functional/test_hf_generation.py
(a reshape of the transposed query guarded seq != 1 there)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from buildsys_hf.step import softcapped_attention  # noqa: E402


def reference(query, key, value, mask, scale, cap):
    scores = torch.tanh(query @ key.transpose(-1, -2) * scale / cap) * cap + mask
    return torch.softmax(scores, dim=-1) @ value


def test_soft_capped_attention_is_the_capped_softmax_and_not_the_plain_one():
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 3, 5, 8) * 3 for _ in range(3))
    mask = torch.zeros(2, 1, 5, 5).masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), torch.finfo(torch.float32).min)
    got = softcapped_attention(query, key, value, mask, 0.5, 1.0)
    torch.testing.assert_close(got, reference(query, key, value, mask, 0.5, 1.0))
    plain = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=0.5)
    assert (got - plain).abs().max() > 0.1  # the cap matters at these scales


def test_a_gemma2_through_the_step_attention_gives_eager_logits():
    """The step's attention takes the cap transformers passes (``softcap``): a tiny Gemma2 whose
    cap is small enough to matter gives eager attention's logits through it."""
    import transformers

    from buildsys_hf.step import ATTENTION, register_attention

    register_attention()
    config = transformers.Gemma2Config(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                       num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                       attn_logit_softcapping=0.5, max_position_embeddings=32)
    torch.manual_seed(0)
    eager = transformers.Gemma2ForCausalLM(config).eval()
    with torch.no_grad():  # logits far past the cap: initial weights give scores of about 1e-3
        for layer in eager.model.layers:
            layer.self_attn.q_proj.weight.mul_(40)
            layer.self_attn.k_proj.weight.mul_(40)
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        wanted = eager(input_ids=ids).logits
        eager.config._attn_implementation = ATTENTION
        got = eager(input_ids=ids).logits
        for layer in eager.model.layers:  # without the cap the logits move: the case is sensitive to it
            layer.self_attn.attn_logit_softcapping = None
        uncapped = eager(input_ids=ids).logits
    torch.testing.assert_close(got, wanted, rtol=1e-4, atol=1e-5)
    assert (uncapped - wanted).abs().max() > 1e-3
