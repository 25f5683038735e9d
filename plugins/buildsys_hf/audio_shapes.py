"""Raw-waveform encoders rewritten where their shape arithmetic pins an exported program.

An audio model's frame count is an expression of the audio length (``(audio // 5 - 5) // 4 + 1``
through the conv feature encoder), not a free symbol, and torch's reshape algorithm cannot
simplify ``frames % (k * frames)`` over such an expression: it guards on it instead.

- WavLM hands its attention to torch's ``F.multi_head_attention_forward``, which works time-major:
  ``linear`` folds ``(frames, batch, width)`` into ``(frames * batch, width)``, guarded on
  ``frames % (batch * frames) != 0``: true for every batch but 1, so the program refuses batch 1.
  ``batch_major_attention`` gives those modules the same attention computed batch-major.
- SEW pools the frames by ``squeeze_factor`` and upsamples back: ``min(pos_conv, pooled)`` compares
  two equal lengths written differently, the upsampling merges ``(pooled, squeeze)`` into one axis
  and the final pad happens only for a frame count not a multiple of the factor — guards on the
  audio length's parity (``Constraints violated (audio)``). ``squeeze_lengths`` computes the same
  values with the lengths in one form: pooled as long as the positional conv, frames interleaved
  by indexing, and always padded (by 0 for a multiple).

Each patch checks the module is written the way it expects and leaves any other form alone.
"""

from __future__ import annotations

import inspect
import types


def patch_audio(model) -> list[str]:
    """Apply both rewrites where they fit; the names of those applied (for the artifact's meta)."""
    applied = []
    if batch_major_attention(model):
        applied.append("batch-major attention")
    if squeeze_lengths(model):
        applied.append("shape-generic squeeze lengths")
    return applied


def batch_major_attention(model) -> int:
    """Patch every WavLM-style attention (torch MHA over ``(frames, batch, width)``); how many."""
    patched = 0
    for module in model.modules():
        method = getattr(module, "torch_multi_head_self_attention", None)
        if method is None or not all(hasattr(module, a) for a in ("q_proj", "k_proj", "v_proj", "out_proj",
                                                                   "num_heads", "scaling", "dropout")):
            continue
        try:
            source = inspect.getsource(type(module).torch_multi_head_self_attention)
        except (OSError, TypeError):
            continue
        if "multi_head_attention_forward" in source and len(inspect.signature(method).parameters) == 3:
            module.torch_multi_head_self_attention = types.MethodType(_attention, module)
            patched += 1
    return patched


def _attention(self, hidden_states, attention_mask, gated_position_bias):
    """What torch's multi_head_attention_forward computes for WavLM (separate q/k/v projections,
    the gated bias as a float mask, the key padding mask, weights averaged over heads), batch-major."""
    import torch

    batch = hidden_states.shape[0]

    def heads(x):  # (batch, frames, width) -> (batch, heads, frames, head width)
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    query = heads(self.q_proj(hidden_states)) * self.scaling
    key, value = heads(self.k_proj(hidden_states)), heads(self.v_proj(hidden_states))
    scores = query @ key.transpose(-1, -2) + gated_position_bias.unflatten(0, (batch, self.num_heads))
    if attention_mask is not None:
        scores = scores.masked_fill(attention_mask.ne(1)[:, None, None, :], float("-inf"))
    weights = torch.nn.functional.dropout(scores.softmax(dim=-1), self.dropout, self.training)
    output = self.out_proj((weights @ value).transpose(1, 2).flatten(2))
    averaged = weights.mean(dim=1)
    return output, averaged[:, None].broadcast_to(weights.shape)


def squeeze_lengths(model) -> int:
    """Patch every SEW-style encoder (pool by ``squeeze_factor``, upsample, pad); how many."""
    patched = 0
    for encoder in model.modules():
        if not _squeezes(encoder):
            continue
        factor = encoder.upsample.squeeze_factor
        pool, upsample, forward = encoder.pool, encoder.upsample, encoder.forward
        pooled = pool.forward

        def pool_forward(self, x, _pooled=pooled, _factor=factor):
            import torch

            # one more pooled frame then the last dropped: the positional conv's length expression
            return _pooled(torch.nn.functional.pad(x, (0, _factor)))[..., :-1]

        def encoder_forward(self, hidden_states, *args, _forward=forward, _upsample=upsample, **kwargs):
            # the frame count the upsampling pads back to; symbolic while exporting, so not kept
            _upsample.buildsys_frames = hidden_states.shape[1]
            try:
                return _forward(hidden_states, *args, **kwargs)
            finally:
                del _upsample.buildsys_frames

        pool.forward = types.MethodType(pool_forward, pool)
        upsample.forward = types.MethodType(_upsample, upsample)
        encoder.forward = types.MethodType(encoder_forward, encoder)
        patched += 1
    return patched


def _squeezes(encoder) -> bool:
    """SEW's encoder as transformers writes it: an AvgPool of kernel = stride = squeeze_factor > 1
    beside a positional conv of even kernel, padding kernel // 2 and the same stride (so the two
    lengths are equal: frames // factor), and the upsampling projection."""
    pool, upsample = getattr(encoder, "pool", None), getattr(encoder, "upsample", None)
    conv = getattr(getattr(encoder, "pos_conv_embed", None), "conv", None)
    factor = getattr(upsample, "squeeze_factor", 0)
    if factor <= 1 or conv is None or not all(hasattr(upsample, a) for a in ("projection", "activation")):
        return False
    pooled = (getattr(pool, "kernel_size", None), getattr(pool, "stride", None), getattr(pool, "padding", None))
    kernel = conv.kernel_size[0]
    return (all(_one(v) == w for v, w in zip(pooled, (factor, factor, 0))) and kernel % 2 == 0
            and conv.padding[0] == kernel // 2 and conv.stride[0] == factor)


def _one(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _upsample(self, hidden_states):
    """SEW's upsampling (project to factor x width, then each pooled frame into factor frames),
    interleaved by indexing rather than a reshape, and padded back to the encoder's frame count."""
    import torch

    factor = self.squeeze_factor
    frames = self.activation(self.projection(hidden_states)).unflatten(-1, (factor, -1))
    index = torch.arange(frames.shape[1] * factor, device=hidden_states.device)
    upsampled = frames[:, index // factor, index % factor]
    return torch.nn.functional.pad(upsampled, (0, 0, 0, self.buildsys_frames - upsampled.shape[1]))
