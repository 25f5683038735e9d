"""Tiny decoder-only language models written offline with save_pretrained (random weights, a
word-level tokenizer over the Hugging Face source's sample sentences): what the generation tests
and manifests/tiny-llama-gen build."""

from __future__ import annotations

import re
from pathlib import Path

# the words of the source's prompts (buildsys_hf.samples.SENTENCES) and a few more
TEXT = ("The build system turns trained models into deployable artifacts. "
        "A lockfile records exactly what was built and from what. "
        "Engines are compiled for the GPU they will run on. Short. "
        "once upon a time there was a model that generated text")
WORDS = sorted(set(re.findall(r"[a-z]+|[^\sa-z]", TEXT.lower())))
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def save_tokenizer(folder: Path) -> int:
    """A word-level tokenizer with <s> prepended and </s> as end of sequence; its vocabulary size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIALS, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)
    return len(vocab)


def config(family: str, vocab: int, positions: int = 64):
    import transformers

    common = {"vocab_size": vocab, "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    if family == "gpt2":
        return transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=positions, **common)
    classes = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
               "mistral": transformers.MistralConfig, "phi3": transformers.Phi3Config,
               "gemma": transformers.GemmaConfig}
    extra = {"head_dim": 16} if family == "gemma" else {}
    return classes[family](hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=positions, **extra, **common)


def save_decoder(folder: Path, family: str = "llama", positions: int = 64, seed: int = 0) -> Path:
    """A random-weight causal LM of ``family`` with its tokenizer in ``folder`` (a few hundred KB)."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = save_tokenizer(folder)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config(family, vocab, positions))
    model.eval().save_pretrained(folder)
    return folder
