"""Rotary position angles as a broadcast product, whatever transformers release computes them.

Releases up to about 5.2x compute a decoder's rotary angles as a batched matmul, ``inv_freq``
expanded to the batch ``@`` the positions; torch's matmul decomposition guards that on
``batch != 1``, so a program exported with a dynamic batch fails (``Constraints violated
(batch)``: seen with transformers 5.17 on the GPU machine's image). Newer releases compute the
same values as ``positions[..., None] * inv_freq``; ``broadcast_rotary`` gives the modules of an
older release that forward, for the plain (``rope_type: default``) embedding only: the others
(dynamic, YaRN ...) update ``inv_freq`` per call and keep their own.
"""

from __future__ import annotations

import inspect
import re
import types

# Llama's "(inv_freq_expanded @ position_ids_expanded).transpose(1, 2)", Qwen2's with .float() on
# both sides ...; 2-D positions only (the multimodal rotaries' .transpose(2, 3) keep their own)
MATMUL_FORM = re.compile(r"inv_freq_expanded[\w.()]*\s*@\s*position_ids_expanded[\w.()]*\)\.transpose\(1, 2\)")


def broadcast_rotary(model) -> int:
    """Patch every plain rotary embedding of ``model`` written in the matmul form; how many."""
    patched = 0
    for module in model.modules():
        if not hasattr(module, "inv_freq") or getattr(module, "rope_type", "default") != "default":
            continue
        try:
            source = inspect.getsource(type(module).forward)
        except (OSError, TypeError):
            continue
        if MATMUL_FORM.search(source):
            module.forward = types.MethodType(_forward, module)
            patched += 1
    return patched


def _forward(self, x, position_ids):
    import torch

    freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
    angles = torch.cat((freqs, freqs), dim=-1)
    scaling = getattr(self, "attention_scaling", 1.0)
    return (angles.cos() * scaling).to(dtype=x.dtype), (angles.sin() * scaling).to(dtype=x.dtype)
