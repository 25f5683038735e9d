"""Inputs and dims of a Hugging Face model, from its config.json and preprocessor files (plan
time: reads JSON, imports no ML framework, runs no model code).

Text: ``input_ids`` and ``attention_mask`` (int64, ``[batch, seq]``; seq up to the config's
position limit). Images: ``pixel_values`` (float32, ``[batch, channels, size, size]``). Raw audio:
``input_values`` (float32, ``[batch, audio]``). CLIP-like models take text and images, each
with its own batch (``texts``, ``batch``). The manifest's ``inputs`` replace these; its ``dims``
replace the matching dims.
"""

from __future__ import annotations

import json
from pathlib import Path

from buildsys import BuildsysError

from .attention import resolve as resolve_attention
from .resolve import model_dir
from .tasks import Task, task_for

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")
BATCH = {"min": 1, "opt": 8, "max": 32}
AUDIO = {"min": 4000, "opt": 16000, "max": 32000}  # samples at 16 kHz: 0.25 s .. 2 s
# Position ids start after the padding index in these families (RoBERTa's scheme), so a sequence
# holds max_position_embeddings - pad_token_id - 1 tokens, not max_position_embeddings.
PADDED_POSITIONS = {"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "roberta-prelayernorm",
                    "xmod", "data2vec-text", "ibert", "luke", "esm"}
# Shortest sequence a family exports over: MobileBERT's trigram embedding shifts the sequence by
# one, and at seq 2 the shifted half is a single token that broadcasts (torch.export's guard seq != 2).
MIN_SEQ = {"mobilebert": 3}


def read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise BuildsysError(f"cannot read {folder / 'config.json'}: {exc}") from None


def describe(model, root: Path, target_kinds: frozenset[str] = frozenset()):
    """``model`` with inputs and dims derived from the model's files, the manifest's own winning,
    and ``attention`` made concrete for the targets' kinds (``attention.py``)."""
    folder = model_dir(model, root)
    config = read_config(folder)
    check_remote_code(model, config, folder)
    task = task_for(config, model.task)
    if task.step == "kv-cache":
        from . import causal

        check_tokenizer(folder)
        inputs, dims = causal.derived(config, model.generation)
    elif task.step == "seq2seq":
        from . import seq2seq

        check_tokenizer(folder)
        inputs, dims = seq2seq.derived(config, model.generation)
    else:
        inputs, dims = derived(config, task, folder)
    block = model.model_dump(mode="json", exclude_none=True)
    block["inputs"] = block.get("inputs") or inputs
    block["dims"] = {**dims, **block.get("dims", {})}
    block["attention"] = resolve_attention(model.attention, task, target_kinds)
    return type(model).model_validate(block)


def check_remote_code(model, config: dict, folder: Path) -> None:
    if config.get("auto_map") and not model.trust_remote_code:
        raise BuildsysError(f"model '{model.id}' ships its own Python code ({folder}, config.json auto_map): "
                            "loading it runs code from the model folder, and trust_remote_code is off",
                            hint="read that code; if you trust it, set 'trust_remote_code: true' under model:")


def modality(config: dict, task: Task) -> str:
    if config.get("text_config") and config.get("vision_config"):
        return "text+image"
    if task.modality != "any":
        return task.modality
    if "conv_dim" in config or "num_mel_bins" in config:
        return "audio"
    if "image_size" in config and "vocab_size" not in config:
        return "image"
    return "text"


def derived(config: dict, task: Task, folder: Path) -> tuple[list[dict], dict]:
    kind = modality(config, task)
    if kind == "audio" and "conv_dim" not in config:
        raise BuildsysError(f"model type '{config.get('model_type')}' reads spectrogram features; "
                            "only raw-waveform audio models (wav2vec2 class) are derived so far",
                            hint="declare model.inputs and model.dims in the manifest")
    inputs, dims = [], {}
    if "text" in kind:
        check_tokenizer(folder)
        batch = "texts" if kind == "text+image" else "batch"
        text = config.get("text_config") or config
        inputs += [{"name": "input_ids", "dtype": "int64", "shape": [batch, "seq"],
                    "range": [0, int(text.get("vocab_size", 2))]},
                   {"name": "attention_mask", "dtype": "int64", "shape": [batch, "seq"], "range": [1, 2]}]
        limit = _max_positions(text, config.get("model_type"))
        dims.update({batch: dict(BATCH),
                     "seq": {"min": MIN_SEQ.get(config.get("model_type"), 1), "opt": min(128, limit), "max": limit}})
    if "image" in kind:
        vision = config.get("vision_config") or config
        size = _image_size(vision)
        inputs.append({"name": "pixel_values", "dtype": "float32",
                       "shape": ["batch", int(vision.get("num_channels", 3)), size, size]})
        dims["batch"] = dict(BATCH)
    if kind == "audio":
        inputs.append({"name": "input_values", "dtype": "float32", "shape": ["batch", "audio"]})
        dims.update({"batch": dict(BATCH), "audio": dict(AUDIO)})
    return inputs, dims


def check_tokenizer(folder: Path) -> None:
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise BuildsysError(f"{folder} has no tokenizer ({', '.join(TOKENIZER_FILES)}), and a text model's "
                            "samples are tokenized sentences",
                            hint="save the tokenizer beside the model (tokenizer.save_pretrained(folder)), "
                                 "or declare model.inputs and a samples entrypoint")


def _max_positions(config: dict, model_type: str | None) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        if isinstance(config.get(key), int) and config[key] > 1:
            limit = config[key]
            if model_type in PADDED_POSITIONS:
                limit -= int(config.get("pad_token_id") or 0) + 1
            return min(limit, 512)  # long-context models: bound the exported range
    return 512


def _image_size(config: dict) -> int:
    size = config.get("image_size", 224)
    return int(size[0] if isinstance(size, (list, tuple)) else size)
