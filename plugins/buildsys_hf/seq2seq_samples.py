"""Real prompts for an encoder-decoder model: the decoder-step samples the reference is computed
on (a first step over 2 encoded sentences, the step after it with its caches, a first step over
4), and the eager model's greedy ``generate()`` that validation compares the artifacts' tokens with.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError

from .prompts import new_tokens, special_ids, tokenizer_for
from .samples import SENTENCES


def context_of(folder: Path, model) -> int:
    from .describe import read_config
    from .seq2seq import max_context

    return max_context(read_config(folder), model.generation)


def prompts(folder: Path, count: int, context: int, tokens: int) -> list[list[int]]:
    """``count`` tokenized sentences (the encoder's input); refused when one is longer than the
    context, or when ``tokens`` new tokens do not fit the decoder's cache."""
    from .seq2seq import SEQ_MAX

    encoded = [tokenizer_for(folder)(text)["input_ids"] for text in (SENTENCES * 2)[:count]]
    longest = max(len(ids) for ids in encoded)
    if longest > context or tokens > context - SEQ_MAX + 1:
        raise BuildsysError(f"the validation prompts take up to {longest} tokens and {tokens} new tokens are "
                            f"generated: the context of {context} holds prompts up to {context} tokens and "
                            f"{context - SEQ_MAX + 1} new tokens",
                            hint="raise model.generation.max_context or lower model.generation.new_tokens")
    return encoded


def start_id(config) -> int:
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        raise BuildsysError("config.json gives no decoder_start_token_id, which starts every decoded sequence",
                            hint="set decoder_start_token_id in the model's config.json")
    return int(start)


def generation_ids(folder: Path, config) -> dict:
    """The ids a generation loop needs, recorded with the artifact (``Seq2SeqLayout`` reads them)."""
    eos, pad = special_ids(tokenizer_for(folder), config)
    return {"decoder_start_token_id": start_id(config), "eos_token_id": eos, "pad_token_id": pad}


def encoded_batch(folder: Path, model, count: int, config):
    """(the encoder's inputs by name, the decoder's encoder mask, eos, pad) of ``count`` validation
    items: right-padded prompts, or a speech model's spectrograms (every encoder row real)."""
    import numpy as np

    from .generate import pad
    from .samples import speech_features
    from .seq2seq import speech

    eos, pad_id = special_ids(tokenizer_for(folder), config)
    if speech(config.to_dict()):
        features = speech_features(folder, count)
        return {"input_features": features}, np.ones((count, config.max_source_positions), np.int64), eos, pad_id
    ids, mask = pad(prompts(folder, count, context_of(folder, model), new_tokens(model)), pad_id, left=False)
    return {"input_ids": ids, "attention_mask": mask}, mask, eos, pad_id


def step_samples(step, encoder, folder: Path, model) -> list[dict]:
    import torch

    from .seq2seq import layout, past_names

    shape = layout(step.config.to_dict())
    samples = []
    for count in (2, 4):
        inputs, mask, _, _ = encoded_batch(folder, model, count, step.config)
        with torch.no_grad():
            hidden = encoder(*[torch.from_numpy(value) for value in inputs.values()])["last_hidden_state"]
        empty = torch.zeros(count, shape["heads"], 0, shape["head_dim"])
        sample = {"input_ids": torch.full((count, 1), start_id(step.config), dtype=torch.long),
                  "encoder_hidden_states": hidden, "encoder_attention_mask": torch.from_numpy(mask)}
        samples.append(dict(sample, **{name: empty for name, _ in past_names(shape["layers"])}))
    first = samples[0]
    with torch.no_grad():
        out = step(*first.values())
    later = dict(first, input_ids=out["logits"][:, -1].argmax(-1, keepdim=True))
    later.update({name: out["present." + name[len("past_key_values."):]] for name, _ in past_names(shape["layers"])})
    return [first, later, samples[1]]


def eager_tokens(seq2seq_lm, inputs: dict, max_new_tokens: int, eos: int | None, pad: int):
    """The eager model's greedy ``generate()`` on the encoder's ``inputs`` (arrays by name): the new
    tokens after the decoder start, ``[batch, n]``."""
    import torch

    with torch.no_grad():
        out = seq2seq_lm.generate(**{name: torch.from_numpy(value) for name, value in inputs.items()},
                                  max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False, num_beams=1,
                                  eos_token_id=eos, pad_token_id=pad)
    # Whisper's generate() leaves out the decoder start it began from; the others return it first
    return (out if seq2seq_lm.config.model_type == "whisper" else out[:, 1:]).numpy()
