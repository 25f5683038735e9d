"""One decoder step with an explicit KV cache, as a module the torch chain exports unchanged.

``CausalLMStep(model)(input_ids, attention_mask, position_ids, *past)`` -> ``{"logits": ...,
"present.N.key": ..., "present.N.value": ...}`` (``causal.py`` has the layout). The cache goes in
as the legacy per-layer tuples and is rebuilt as the installed transformers' ``DynamicCache``
(its keyword is ``cache`` since 5.2x, ``past_key_values`` before: read from forward()).

Attention is ``buildsys_step``, registered here with transformers' attention interface:
``scaled_dot_product_attention`` always given the mask, never ``is_causal`` (transformers' sdpa
picks ``is_causal`` from ``q_len > 1``, a branch that pins the exported graph to prefill or to
decode), grouped key/value heads repeated with ``index_select`` (``repeat_kv``'s reshape adds a
``kv_len != 1`` guard), and the additive mask ``eager_mask`` builds, where a query that sees
no key (a pad query of a left-padded batch) sees its own, the same in fp32 and fp16 (the sdpa
mask would let eager skip the causal mask when ``past`` is 0, which the traced graph cannot).
The attention call itself is ``buildsys_torch.attention.traced_sdpa`` (opaque while exported).
Export then runs with torch's size-oblivious reasoning (``export_context``), so the graph traced
at seq 16 / past 16 takes seq 1 and past 0.
"""

from __future__ import annotations

import inspect

ATTENTION = "buildsys_step"  # no "sdpa" in it: transformers would check the class's sdpa support


def register_attention() -> None:
    import torch
    from buildsys_torch.attention import traced_sdpa
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, position_bias=None,
                  **kwargs):
        if position_bias is not None:  # T5's relative positions: an additive bias beside the mask
            attention_mask = position_bias if attention_mask is None else position_bias + attention_mask
        groups = getattr(module, "num_key_value_groups", 1)
        if groups > 1:
            index = torch.arange(key.shape[1], device=key.device).repeat_interleave(groups)
            key, value = key.index_select(1, index), value.index_select(1, index)
        softcap = kwargs.get("softcap")
        if softcap is None:
            out = traced_sdpa(query, key, value, attn_mask=attention_mask, scale=scaling)
        else:
            out = softcapped_attention(query, key, value, attention_mask, scaling, softcap)
        return out.transpose(1, 2).clone(memory_format=torch.contiguous_format), None

    def self_attending_mask(*args, **kwargs):
        """``eager_mask``, where a query sees no key at all (a pad query of a left-padded causal
        row), with its own key allowed: it attends to itself instead of over a row of float32's minimum,
        which a half-precision program turns into -inf (sdpa then gives 0, fp32 an average: the
        fp16 step disagreed with its reference at every pad position). Every other row (each real
        query's, cross-attention's) is left as it is, and no real query sees a pad key, so no real
        output changes."""
        mask = eager_mask(*args, **kwargs)
        if mask is None:
            return None
        queries, keys = mask.shape[-2], mask.shape[-1]
        own = torch.arange(keys, device=mask.device)[None, :] == \
            (torch.arange(queries, device=mask.device) + (keys - queries))[:, None]
        dead = (mask != 0).all(dim=-1, keepdim=True)  # rows with no key (cross-attention keeps its own)
        return mask.masked_fill(own & dead, 0.0)

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, self_attending_mask)


def softcapped_attention(query, key, value, mask, scaling, softcap: float):
    """Gemma2's attention, whose logits are soft-capped (``tanh(x / c) * c``), which no fused
    attention takes: written out with ``bmm`` over ``[batch * heads]`` (``matmul`` of 4-d
    tensors folds dims and guards ``seq != 1``, pinning the step to prefill)."""
    import torch

    batch, heads, queries, dim = query.shape
    keys = key.shape[2]
    scale = scaling if scaling is not None else dim ** -0.5
    # the query comes transposed ([batch, seq, heads, dim] underneath): reshaping it as it is asks
    # whether its strides allow a view, which guards seq != 1; a contiguous copy views freely
    flat_query = query.clone(memory_format=torch.contiguous_format).view(batch * heads, queries, dim)
    scores = torch.bmm(flat_query, key.reshape(batch * heads, keys, dim).transpose(1, 2))
    scores = torch.tanh(scores.view(batch, heads, queries, keys) * scale / softcap) * softcap
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.bmm(probs.reshape(batch * heads, queries, keys), value.reshape(batch * heads, keys, dim))
    return out.view(batch, heads, queries, dim)


def export_context():
    """torch's size-oblivious reasoning while tracing: sizes 0 and 1 are not specialised away."""
    from buildsys_torch.lower import size_oblivious

    return size_oblivious()


def cache_keyword(model) -> str:
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def step_module(model):
    """The causal LM wrapped as one step with the cache as flat tensors."""
    import torch
    from transformers import DynamicCache

    keyword = cache_keyword(model)
    if "position_ids" not in inspect.signature(model.forward).parameters:
        from buildsys import BuildsysError

        raise BuildsysError(f"{type(model).__name__}.forward takes no position_ids, which the generation step "
                            "passes (left-padded batches need them)", hint="this architecture is not supported yet")

    class CausalLMStep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, position_ids, *past):
            pairs = [(past[i], past[i + 1]) for i in range(0, len(past), 2)]
            cache = DynamicCache(pairs, config=self.inner.config)
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=True, **{keyword: cache})
            present = getattr(out, "cache", None) or out.past_key_values
            result = {"logits": out.logits}
            for n, layer in enumerate(present.layers):
                result[f"present.{n}.key"], result[f"present.{n}.value"] = layer.keys, layer.values
            return result

    step = CausalLMStep(model).eval()
    step.config = model.config
    step.buildsys_export_context = export_context
    return step
