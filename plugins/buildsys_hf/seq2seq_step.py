"""An encoder-decoder model as two modules the torch chain exports: the encoder, and one decoder
step with an explicit self- and cross-attention cache (``seq2seq.py`` has the layout).

The cross-attention cache in one branch-free graph: every cross-attention module is called with
``key_value_states`` = the encoder rows not cached yet, starting at ``min(encoder_past,
encoder_seq - 1)`` (a forward pre-hook slices them), and the cache layer keeps the first
``encoder_seq`` rows of ``cat(past, new)``. First step (``encoder_past`` 0): all rows projected.
Later steps (``encoder_past`` = ``encoder_seq``): one row projected and dropped, the cache
passed through. (One row, not none: the attention's ``view(..., -1, head_dim)`` of an empty
tensor is ambiguous.) The caches are built empty and filled, so ``EncoderDecoderCache`` never
asks whether its cross cache is empty (a guard that would pin the graph to one step kind).
Attention is ``buildsys_step`` (``step.py``), with T5's relative position bias added to the mask.
"""

from __future__ import annotations

import contextlib

from .step import cache_keyword, export_context


def step_module(model):
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    keyword = cache_keyword(model)

    class CrossCache(DynamicCache):
        """Keeps the first ``rows`` rows of every update (the encoder's length)."""

        rows = None

        def update(self, keys, values, layer_idx, *args, **kwargs):
            keys, values = super().update(keys, values, layer_idx, *args, **kwargs)
            keys, values = keys[:, :, :self.rows], values[:, :, :self.rows]
            self.layers[layer_idx].keys, self.layers[layer_idx].values = keys, values
            return keys, values

    class Seq2SeqStep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self._start = None
            if inner.config.model_type == "whisper":
                embed_by_lookup(inner.get_decoder().embed_positions)
            for module in inner.modules():
                if hasattr(module, "k") or hasattr(module, "k_proj"):
                    module.register_forward_pre_hook(self._uncached_rows, with_kwargs=True)

        def _uncached_rows(self, module, args, kwargs):
            states = kwargs.get("key_value_states")
            if states is None or self._start is None:
                return None
            start = torch.sym_min(self._start, states.shape[1] - 1)
            return args, dict(kwargs, key_value_states=states[:, start:].clone(memory_format=torch.contiguous_format))

        def forward(self, input_ids, encoder_hidden_states, encoder_attention_mask, *past):
            layers = len(past) // 4
            config = self.inner.config
            own = DynamicCache([(past[4 * n], past[4 * n + 1]) for n in range(layers)], config=config)
            cross = CrossCache([(past[4 * n + 2], past[4 * n + 3]) for n in range(layers)], config=config)
            cross.rows = encoder_hidden_states.shape[1]
            torch._check(past[2].shape[2] <= encoder_hidden_states.shape[1])
            # one batch symbol: Whisper views the encoder rows' keys as (query batch, -1, ...), which
            # with two symbols becomes a floor division the exporter guards into constants
            torch._check(encoder_hidden_states.shape[0] == input_ids.shape[0])
            cache = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
            cache.self_attention_cache, cache.cross_attention_cache = own, cross
            self._start = past[2].shape[2]
            try:
                out = self.inner(encoder_outputs=(encoder_hidden_states,), attention_mask=encoder_attention_mask,
                                 decoder_input_ids=input_ids, use_cache=True, **{keyword: cache})
            finally:
                self._start = None
            present = getattr(out, "cache", None) or out.past_key_values
            result = {"logits": out.logits}
            for n in range(layers):
                for part, held in (("decoder", present.self_attention_cache), ("encoder", present.cross_attention_cache)):
                    result[f"present.{n}.{part}.key"] = held.layers[n].keys
                    result[f"present.{n}.{part}.value"] = held.layers[n].values
            return result

    step = Seq2SeqStep(model).eval()
    step.config = model.config
    step.buildsys_export_context = copying_contiguous if model.config.model_type == "whisper" else export_context
    return step


@contextlib.contextmanager
def copying_contiguous():
    """``export_context``, with ``Tensor.contiguous()`` as a copy: Whisper's attention makes its
    transposed query contiguous, and asking whether it already is guards batch and seq away from
    1 (a copy of a contiguous tensor is the same values)."""
    import torch

    original = torch.Tensor.contiguous
    torch.Tensor.contiguous = lambda self, memory_format=torch.contiguous_format: self.clone(
        memory_format=memory_format)
    try:
        with export_context():
            yield
    finally:
        torch.Tensor.contiguous = original


def embed_by_lookup(table) -> None:
    """Whisper's learned decoder positions looked up with ``embedding()``, as token ids are: its own
    ``weight[position_ids]`` makes the exporter guard batch and seq away from 1. Same values."""
    import torch

    def forward(input_ids, cache_length=0, position_ids=None):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=table.weight.device) + cache_length
        return torch.nn.functional.embedding(position_ids, table.weight)

    table.forward = forward


def encoder_module(model):
    """The encoder program: tokens (and their mask) in, or a speech encoder's ``input_features``."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return {"last_hidden_state": self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state}

    class SpeechEncoder(Encoder):
        def forward(self, input_features):
            return {"last_hidden_state": self.inner(input_features=input_features).last_hidden_state}

    speech = hasattr(model.config, "num_mel_bins")
    encoder = (SpeechEncoder if speech else Encoder)(model.get_encoder()).eval()
    encoder.buildsys_export_context = export_context
    return encoder
