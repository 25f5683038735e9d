"""Real prompts for a generation model: its tokenizer on fixed sentences, the step samples the
reference is computed on (a prefill, a decode step after it, a wider prefill), and the eager
model's greedy ``generate()`` that validation compares the artifacts' tokens with.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError

from .samples import SENTENCES


def tokenizer_for(folder: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    tokenizer.padding_side = "left"
    return tokenizer


def special_ids(tokenizer, config) -> tuple[int | None, int]:
    """(end-of-sequence id or None, pad id) as generate() would use them."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else getattr(config, "eos_token_id", None)
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = eos if eos is not None else 0
    return eos, pad


def prompts(folder: Path, count: int, context: int, new_tokens: int) -> list[list[int]]:
    """``count`` tokenized sentences; refused when one with ``new_tokens`` does not fit ``context``."""
    tokenizer = tokenizer_for(folder)
    encoded = [tokenizer(text)["input_ids"] for text in (SENTENCES * 2)[:count]]
    longest = max(len(ids) for ids in encoded)
    if longest + new_tokens > context:
        raise BuildsysError(f"the validation prompts take up to {longest} tokens, and with {new_tokens} new tokens "
                            f"they need {longest + new_tokens} positions: more than the context of {context}",
                            hint="raise model.generation.max_context (up to the model's positions) or lower "
                                 "model.generation.new_tokens")
    return encoded


def context_of(folder: Path, model) -> int:
    from .causal import max_context
    from .describe import read_config

    return max_context(read_config(folder), model.generation)


def new_tokens(model) -> int:
    return model.generation.new_tokens if model.generation is not None else 16


def step_samples(step, folder: Path, model) -> list[dict]:
    """Prefill of 2 prompts (past empty), the decode step after it (seq 1), prefill of 4 prompts."""
    import torch

    from .generate import left_pad, positions

    context = context_of(folder, model)
    eos, pad = special_ids(tokenizer_for(folder), step.config)
    samples = []
    for count in (2, 4):
        ids, mask = left_pad(prompts(folder, count, context, new_tokens(model)), pad)
        samples.append(_sample(step, torch.from_numpy(ids), torch.from_numpy(mask),
                               torch.from_numpy(positions(mask)), None))
    with torch.no_grad():
        out = step(*[samples[0][k] for k in ("input_ids", "attention_mask", "position_ids")],
                   *samples[0]["past"])
    chosen = out["logits"][:, -1].argmax(-1, keepdim=True)
    mask = torch.cat([samples[0]["attention_mask"], torch.ones_like(chosen)], dim=1)
    present = [out[k] for k in out if k != "logits"]
    samples.insert(1, _sample(step, chosen, mask, mask.sum(1, keepdim=True) - 1, present))
    return [_named(s) for s in samples]


def _sample(step, ids, mask, pos, past) -> dict:
    import torch

    from .causal import layout

    if past is None:
        shape = layout(step.config.to_dict())
        empty = torch.zeros(ids.shape[0], shape["kv_heads"], 0, shape["head_dim"])
        past = [empty.clone() for _ in range(2 * shape["layers"])]
    return {"input_ids": ids.long(), "attention_mask": mask.long(), "position_ids": pos.long(), "past": past}


def _named(sample: dict) -> dict:
    named = {k: v for k, v in sample.items() if k != "past"}
    for i, tensor in enumerate(sample["past"]):
        named[f"past_key_values.{i // 2}.{('key', 'value')[i % 2]}"] = tensor
    return named


def eager_tokens(causal_lm, ids, mask, max_new_tokens: int, eos: int | None, pad: int):
    """The eager model's greedy ``generate()`` on left-padded ``ids``: the new tokens, ``[batch, n]``."""
    import torch

    with torch.no_grad():
        out = causal_lm.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                 max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=False, num_beams=1,
                                 eos_token_id=eos, pad_token_id=pad)
    return out[:, ids.shape[1]:].numpy()
