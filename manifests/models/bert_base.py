"""A BERT-base-class encoder (12 layers, hidden 768, 12 heads, FFN 3072; 110 M parameters),
random weights: the layers of ``bert.py`` with an attention mask in the model's dtype.

The module is fp32; the manifest's targets are lowered to fp16 by the ``torch.fp16`` stage. Its
outputs leave in fp16 (what a GPU service sends on, half the bytes to copy back), in the fp32
reference too. The mask's bias is -10000 (BERT's own), not the dtype's minimum: lowered to fp16,
float32's minimum would be -inf and ``0 * -inf`` a NaN on every kept token."""

import torch
from torch import nn

from bert import BertConfig, BertEncoder

BASE = BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)


class HalfBertEncoder(BertEncoder):
    """Returns the token states and the mean-pooled, L2-normalised embedding, in fp16."""

    def forward(self, input_ids, attention_mask):
        dtype = self.embeddings.word_embeddings.weight.dtype
        mask = attention_mask.to(dtype)
        bias = (1.0 - mask)[:, None, None, :] * -10000.0
        states = self.encoder(self.embeddings(input_ids), bias)
        pooled = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-4)
        embedding = nn.functional.normalize(pooled, dim=-1)
        return {"last_hidden_state": states.half(), "embedding": embedding.half()}


def build():
    torch.manual_seed(0)
    model = HalfBertEncoder(BASE)
    for m in model.modules():  # BERT's initialisation: N(0, 0.02)
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
    return model.eval()


def samples():
    """Validation samples at seq 128 (the benchmark's), batch 1 and 2."""
    g = torch.Generator().manual_seed(1)
    return [(torch.randint(0, BASE.vocab_size, (b, 128), generator=g), torch.ones(b, 128, dtype=torch.int64))
            for b in (1, 2)]


def calibration_batches(batch: int = 8, batches: int = 4):
    """INT8 calibration data: random token ids at seq 128 (another seed than the samples'), full masks."""
    import numpy as np

    rng = np.random.default_rng(1234)
    for _ in range(batches):
        yield {"input_ids": rng.integers(0, BASE.vocab_size, (batch, 128)).astype(np.int64),
               "attention_mask": np.ones((batch, 128), np.int64)}
