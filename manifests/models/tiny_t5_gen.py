"""Write the tiny random-weight T5 that manifests/tiny-t5-gen.yaml builds (offline, ~200 KB,
git-ignored): 2 encoder and 2 decoder layers, d_model 32, 4 heads of 8, relative positions, and
the word-level tokenizer of tiny_llama_gen.py (prompts end with ``</s>``; the decoder starts
from ``<pad>``, as T5's does).

    .venv/bin/python manifests/models/tiny_t5_gen.py      # then: buildsys build manifests/tiny-t5-gen.yaml

The weights are random (seeded, std 1 so that greedy decoding does not repeat one token from
the start): what the example checks is that the artifacts generate the eager model's tokens.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "tiny-t5-gen"
save_tokenizer = runpy.run_path(str(HERE / "tiny_llama_gen.py"))["save_tokenizer"]


def main(folder: Path = FOLDER, seed: int = 0) -> Path:
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = save_tokenizer(folder, encoder=True)
    config = transformers.T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
                                   num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=32,
                                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=3,
                                   architectures=["T5ForConditionalGeneration"])
    return save_spread(transformers.T5ForConditionalGeneration, config, folder, seed)


def save_spread(model_class, config, folder: Path, seed: int) -> Path:
    """``model_class(config)`` with every weight but the layer norms drawn from N(0, 1), seeded,
    saved to ``folder``: the models' own inits (T5's std d_model**-0.5) greedily repeat one token
    from the start, which would make token equality a weak check."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config).eval()
    spread(model)
    model.save_pretrained(folder)
    return folder


def spread(model, std: float = 1.0) -> None:
    """Every weight of ``model`` but the layer norms' drawn from N(0, ``std``), in place."""
    import torch

    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "layer_norm" not in name:
                weight.normal_(0.0, std)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER))
