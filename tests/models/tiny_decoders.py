"""Tiny decoder-only language models written offline with save_pretrained (random weights, a
word-level tokenizer over the Hugging Face source's sample sentences): what the generation tests
and manifests/tiny-llama-gen build."""

from __future__ import annotations

import runpy
from pathlib import Path

# the example's own script writes the tokenizer (a word-level one over the words of the source's
# prompts, buildsys_hf.samples.SENTENCES, and a few more): tests and example share one vocabulary
EXAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "models" / "tiny_llama_gen.py"
save_tokenizer = runpy.run_path(str(EXAMPLE))["save_tokenizer"]


def config(family: str, vocab: int, positions: int = 64):
    import transformers

    common = {"vocab_size": vocab, "bos_token_id": 2, "eos_token_id": 3, "pad_token_id": 0}
    # a head of its own where the family ties it: random tied embeddings make greedy decoding
    # repeat the token just fed (gpt2 and gemma did), and token equality over that checks little
    untied = {"tie_word_embeddings": False}
    if family == "gpt2":
        return transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=positions, **common, **untied)
    classes = {"llama": transformers.LlamaConfig, "qwen2": transformers.Qwen2Config,
               "mistral": transformers.MistralConfig, "phi3": transformers.Phi3Config,
               "gemma": transformers.GemmaConfig, "gemma2": transformers.Gemma2Config,
               "mixtral": transformers.MixtralConfig,
               "qwen3_moe": transformers.Qwen3MoeConfig}
    # mixture of experts: widths that are not a multiple of 16 bytes, which grouped_mm refuses on CPU
    extra = {"gemma": {"head_dim": 16, **untied}, "gemma2": {"head_dim": 16},
             "mixtral": {"num_local_experts": 4, "num_experts_per_tok": 2, "intermediate_size": 42},
             "qwen3_moe": {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 18}}.get(family, {})
    sizes = {"hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_position_embeddings": positions}
    return classes[family](**{**sizes, **extra}, **common)


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


def save_remote(folder: Path, model_class: str = "HouseForCausalLM", seed: int = 0) -> Path:
    """A tiny Llama shipped as remote code (``remote_llama.py``): ``model_class`` is the folder's
    AutoModelForCausalLM, under model type ``house_llama``."""
    import importlib.util
    import json
    import shutil

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    vocab = save_tokenizer(folder)
    source = folder / "modeling_house.py"
    shutil.copy(Path(__file__).with_name("remote_llama.py"), source)
    spec = importlib.util.spec_from_file_location("modeling_house", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    base = config("llama", vocab)
    torch.manual_seed(seed)
    model = module.HouseForCausalLM(module.HouseConfig(**base.to_diff_dict()))
    model.eval().save_pretrained(folder)
    path = folder / "config.json"
    written = json.loads(path.read_text())
    written.update(architectures=[model_class], auto_map={"AutoConfig": "modeling_house.HouseConfig",
                                                          "AutoModelForCausalLM": f"modeling_house.{model_class}"})
    path.write_text(json.dumps(written, indent=2))
    return folder
