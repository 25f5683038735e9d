"""The small transformer encoder example: 2 BERT layers, random weights (seeded)."""

import torch

from bert import BertConfig, BertEncoder

CONFIG = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=512, max_position_embeddings=128)


def build():
    torch.manual_seed(0)
    return BertEncoder(CONFIG)


def calibration_batches(batch: int = 8, batches: int = 4, seq: int = 128):
    """Calibration data: random token ids at the longest sequence the manifest allows (the
    position embeddings of every position get calibrated), from another seed than validation."""
    import numpy as np

    rng = np.random.default_rng(4321)
    for _ in range(batches):
        yield {"input_ids": rng.integers(0, 1000, (batch, seq), dtype=np.int64),
               "attention_mask": np.ones((batch, seq), dtype=np.int64)}
