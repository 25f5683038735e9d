"""Greedy generation over a built ``text2text-generation`` artifact (public): its encoder and its
decoder step (``seq2seq.py`` has the layout), numpy only.

The encoder runs once on the right-padded prompts; then one decoder step per token from the
model's ``decoder_start_token_id``, feeding ``present.N.decoder.*`` / ``present.N.encoder.*``
back as ``past_key_values.N.*`` (the first step computes the cross-attention cache, later steps
pass it). The tokens are what ``generate(do_sample=False)`` of transformers gives::

    import buildsys
    from buildsys_hf.seq2seq_generate import Seq2SeqLayout, generate_seq2seq
    encoder = buildsys.load("artifacts/tiny-t5-gen/1.0.0/onnx", program="encoder")
    decoder = buildsys.load("artifacts/tiny-t5-gen/1.0.0/onnx")
    layout = Seq2SeqLayout.from_artifact(decoder.directory)
    tokens = generate_seq2seq(encoder, decoder, layout, [[5, 6, 7, 1]], max_new_tokens=16)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from buildsys import BuildsysError

from .generate import PAST, _callable, pad, pick, presented


@dataclass(frozen=True)
class Seq2SeqLayout:
    """What the loop needs of a seq2seq artifact: the decoder step's input and output names, the
    cache tensors' heads and head size, the decoder start and end ids, and the lengths it was
    built for (``max_source`` encoder tokens, ``max_target`` decoded tokens)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    heads: int
    head_dim: int
    decoder_start_token_id: int
    eos_token_id: int | None = None
    pad_token_id: int = 0
    max_source: int | None = None
    max_target: int | None = None

    @classmethod
    def from_record(cls, record: dict) -> Seq2SeqLayout:
        signature, meta = record["signature"], record["meta"]
        specs = signature["inputs"]
        past = next((s for s in specs if s["name"].startswith(PAST)), None)
        if past is None or "encoder_hidden_states" not in [s["name"] for s in specs]:
            raise BuildsysError("this artifact is not an encoder-decoder step (no encoder_hidden_states and "
                                "past_key_values.N.* inputs)", hint="build it from task: text2text-generation")
        encoder = (meta.get("programs") or {}).get("encoder") or {}
        dims, special = signature.get("dims") or {}, meta.get("generation") or encoder.get("generation") or {}
        return cls(tuple(s["name"] for s in specs), tuple(meta["output_names"]), int(past["shape"][1]),
                   int(past["shape"][3]), int(special.get("decoder_start_token_id", 0)),
                   special.get("eos_token_id"), int(special.get("pad_token_id") or 0),
                   _high(dims, "encoder_seq"), _high(dims, "past", 1))

    @classmethod
    def from_artifact(cls, directory: str | Path) -> Seq2SeqLayout:
        return cls.from_record(json.loads((Path(directory) / "artifact.json").read_text()))


def _high(dims: dict, name: str, extra: int = 0) -> int | None:
    dim = dims.get(name)
    return dim["max"] + extra if isinstance(dim, dict) and "max" in dim else None


def generate_seq2seq(encoder, decoder, layout: Seq2SeqLayout, prompt_ids=None, max_new_tokens: int = 16,
                     eos_token_id: int | None = None, *, attention_mask=None, pad_token_id: int | None = None,
                     input_features=None):
    """Greedy decode: ``encoder`` and ``decoder`` are runner callables or ``buildsys.Session``s of
    the artifact's two programs; the source is ``prompt_ids`` (token lists, or padded ids with
    ``attention_mask``), or a speech model's ``input_features`` (float32 [batch, mel bins, frames],
    from its feature extractor). Returns int64 ``[batch, n]`` new tokens (after the decoder start),
    ``n <= max_new_tokens``; rows that ended get the pad id, as transformers does."""
    import numpy as np

    eos = eos_token_id if eos_token_id is not None else layout.eos_token_id
    pad_id = pad_token_id if pad_token_id is not None else layout.pad_token_id
    if input_features is not None:
        check_lengths(layout, 0, max_new_tokens)
        [hidden] = _callable(encoder)([np.asarray(input_features, np.float32)])[:1]
        mask = np.ones(hidden.shape[:2], np.int64)  # every row of a speech encoder's output is real
    else:
        ids, mask = (pad(prompt_ids, pad_id, left=False) if attention_mask is None
                     else (np.asarray(prompt_ids, np.int64), np.asarray(attention_mask, np.int64)))
        check_lengths(layout, ids.shape[1], max_new_tokens)
        [hidden] = _callable(encoder)([ids, mask])[:1]
    run, batch = _callable(decoder), hidden.shape[0]
    cache = {name: np.zeros((batch, layout.heads, 0, layout.head_dim), np.float32)
             for name in layout.inputs if name.startswith(PAST)}
    feed = np.full((batch, 1), layout.decoder_start_token_id, np.int64)
    done, tokens = np.zeros(batch, dtype=bool), []
    for _ in range(max_new_tokens):
        given = {"input_ids": feed, "encoder_hidden_states": hidden, "encoder_attention_mask": mask, **cache}
        outputs = dict(zip(layout.outputs, run([given[name] for name in layout.inputs])))
        chosen = pick(outputs["logits"], done, pad_id, eos)
        tokens.append(chosen)
        if done.all():
            break
        cache, feed = presented(outputs, cache), chosen[:, None]
    return np.stack(tokens, axis=1)


def check_lengths(layout: Seq2SeqLayout, source: int, max_new_tokens: int) -> None:
    if layout.max_source is not None and source > layout.max_source:
        raise BuildsysError(f"a prompt of {source} tokens is longer than the {layout.max_source} the encoder "
                            "was built for", hint="shorten the prompt, or rebuild with a larger "
                                                  "model.generation.max_context")
    if layout.max_target is not None and max_new_tokens > layout.max_target:
        raise BuildsysError(f"{max_new_tokens} new tokens need a decoder cache of {max_new_tokens - 1}, and the "
                            f"artifact holds {layout.max_target - 1}", hint="generate fewer tokens, or rebuild "
                                                                            "with a larger model.generation.max_context")
