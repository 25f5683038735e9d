"""Write the tiny random-weight Llama that manifests/tiny-llama-gen.yaml builds (offline, ~280 KB,
git-ignored): a Llama config with grouped-query attention (4 query heads, 2 key/value heads),
2 layers, hidden 64, 64 positions, and a word-level tokenizer over a small vocabulary.

    .venv/bin/python manifests/models/tiny_llama_gen.py      # then: buildsys build manifests/tiny-llama-gen.yaml

The weights are random (seeded): what the example checks is that every artifact generates the
same tokens as the eager model (fp32), or how many (int8), and how fast. Same recipe as the
tests' tiny decoders. ``calibration_batches`` is the INT8 target's calibration data.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "tiny-llama-gen"
TEXT = ("The build system turns trained models into deployable artifacts. "
        "A lockfile records exactly what was built and from what. "
        "Engines are compiled for the GPU they will run on. Short. "
        "once upon a time there was a model that generated text")
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def save_tokenizer(folder: Path, encoder: bool = False) -> int:
    """A word-level tokenizer over ``TEXT``; returns its vocabulary size. A decoder's prompts start
    with ``<s>``; an encoder's (``encoder``: tiny_t5_gen.py) end with ``</s>``, as T5's do."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(re.findall(r"[a-z]+|[^\sa-z]", TEXT.lower())))
    vocab = {w: i for i, w in enumerate([*SPECIALS, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.post_processor = (processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 3)]) if encoder
                          else processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)]))
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)
    return len(vocab)


def main(folder: Path = FOLDER) -> Path:
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = save_tokenizer(folder)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      bos_token_id=2, eos_token_id=3, pad_token_id=0)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(folder)
    return folder


def calibration_batches(folder: Path = FOLDER, batches: int = 6, rows: int = 4, length: int = 11):
    """INT8 calibration for the step graph (the manifest's ``calibration.data``): prefill steps of
    random word sequences, one shape (modelopt's calibrator wants it), an empty cache."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    words = sorted(set(re.findall(r"[a-z]+", TEXT.lower())))
    rng = np.random.default_rng(0)
    config = __import__("json").loads((folder / "config.json").read_text())
    heads = config["num_key_value_heads"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    for _ in range(batches):
        ids = np.array([tokenizer(" ".join(rng.choice(words, size=length)))["input_ids"] for _ in range(rows)])
        batch = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "position_ids": np.tile(np.arange(ids.shape[1]), (rows, 1))}
        for layer in range(config["num_hidden_layers"]):
            for part in ("key", "value"):
                batch[f"past_key_values.{layer}.{part}"] = np.zeros((rows, heads, 0, head_dim), np.float32)
        yield batch


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER))
