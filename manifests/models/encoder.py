"""The small transformer encoder example: 2 BERT layers, random weights (seeded)."""

import torch

from bert import BertConfig, BertEncoder

CONFIG = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=512, max_position_embeddings=128)


def build():
    torch.manual_seed(0)
    return BertEncoder(CONFIG)
