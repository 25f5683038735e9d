"""Greedy generation over any built artifact of a ``text-generation`` model (public).

The artifact is one decoder step with an explicit KV cache (``causal.py`` has the layout). Given
the callable a runner returns (``RunnerSpec.load(artifact, device)``: numpy arrays in the
manifest's input order in, arrays in output order out), ``generate`` runs the prefill, then one
decode step per token, feeding ``present.N.*`` back as ``past_key_values.N.*`` and growing the
attention mask — so one loop serves ``onnx``, ``onnx.ort``, ``torch.exported`` and ``torch.aoti``.
Its tokens are what ``generate(do_sample=False)`` of transformers gives: left padding, positions
from the mask, pad tokens after a row's end of sequence. numpy only::

    from buildsys_hf.generate import StepLayout, generate
    layout = StepLayout.from_artifact("artifacts/tiny-llama-gen/1.0.0/onnx")
    run = onnx_runner.load(artifact, "cpu")        # any RunnerSpec's callable
    tokens = generate(run, layout, [[1, 17, 42], [5, 6]], max_new_tokens=16, eos_token_id=2)

Encoder-decoder artifacts: ``seq2seq_generate.py``. From text to text, with the tokenizer the
artifact carries: ``text.generate_text``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from buildsys import BuildsysError

PAST = "past_key_values."
PRESENT = "present."


@dataclass(frozen=True)
class StepLayout:
    """What the loop needs to know of a step artifact: input and output names in order, the cache
    tensors' kv heads, head size and dtype, and the longest sequence it was built for."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kv_heads: int
    head_dim: int
    dtype: str = "float32"
    max_context: int | None = None

    @classmethod
    def from_inputs(cls, inputs: Sequence[Any], outputs: Sequence[str], dims: dict | None = None) -> StepLayout:
        """From input specs (``{name, shape, dtype}`` dicts or the manifest's InputSpecs) and output names."""
        specs = [spec if isinstance(spec, dict) else spec.model_dump() for spec in inputs]
        past = next((s for s in specs if s["name"].startswith(PAST)), None)
        if past is None or "input_ids" not in [s["name"] for s in specs]:
            raise BuildsysError("this artifact is not a decoder step with a KV cache (no input_ids and "
                                "past_key_values.N.key inputs)", hint="build it from task: text-generation")
        seq = (dims or {}).get("seq")
        context = (seq.get("max") if isinstance(seq, dict) else getattr(seq, "max", None)) if seq else None
        return cls(tuple(s["name"] for s in specs), tuple(outputs), int(past["shape"][1]), int(past["shape"][3]),
                   past.get("dtype", "float32"), context)

    @classmethod
    def from_record(cls, record: dict) -> StepLayout:
        """From a built target's ``artifact.json`` record."""
        signature = record["signature"]
        return cls.from_inputs(signature["inputs"], record["meta"]["output_names"], signature.get("dims"))

    @classmethod
    def from_artifact(cls, directory: str | Path) -> StepLayout:
        """From a built target's ``artifact.json``."""
        return cls.from_record(json.loads((Path(directory) / "artifact.json").read_text()))


def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int):
    """(ids, mask) int64 arrays, each prompt right-aligned (what decoder generation expects)."""
    return pad(prompts, pad_token_id, left=True)


def pad(prompts: Sequence[Sequence[int]], pad_token_id: int, left: bool):
    """(ids, mask) int64 arrays of the prompts padded on the left or the right (encoders: right)."""
    import numpy as np

    if not prompts or any(len(p) == 0 for p in prompts):
        raise BuildsysError("every prompt needs at least one token")
    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        where = slice(width - len(prompt), width) if left else slice(0, len(prompt))
        ids[row, where] = prompt
        mask[row, where] = 1
    return ids, mask


def positions(mask):
    """transformers' position ids for a left-padded mask: count of real tokens so far, pads at 1."""
    import numpy as np

    pos = np.cumsum(mask, axis=-1) - 1
    return np.where(mask == 0, 1, pos).astype(np.int64)


def _callable(run):
    """A runner callable (arrays in input order in, arrays in output order out) from either that
    or a ``buildsys.Session`` (``buildsys.load(...)``), whose ``run`` takes and gives dicts."""
    if hasattr(run, "artifact") and hasattr(run, "inputs") and hasattr(run, "run"):
        session = run
        names = [spec.name for spec in session.inputs]
        return lambda arrays: list(session.run(dict(zip(names, arrays))).values())
    return run


def generate(run: Callable[[list], list], layout: StepLayout, prompt_ids, max_new_tokens: int,
             eos_token_id: int | None = None, *, attention_mask=None, pad_token_id: int | None = None):
    """Greedy decode through ``run``: a runner's callable, or a ``buildsys.Session`` (``buildsys.load``
    of the artifact). Returns an int64 array ``[batch, n]`` of new tokens, ``n <= max_new_tokens`` (fewer when
    every row has ended). ``prompt_ids`` is a list of token lists (left-padded here) or an array
    already padded, with ``attention_mask``. Rows that ended get ``pad_token_id`` (default: the
    end-of-sequence id), as transformers does."""
    import numpy as np

    run = _callable(run)
    pad = pad_token_id if pad_token_id is not None else (eos_token_id if eos_token_id is not None else 0)
    if attention_mask is None:
        ids, mask = left_pad(prompt_ids, pad) if not hasattr(prompt_ids, "shape") else (
            np.asarray(prompt_ids, np.int64), np.ones(np.shape(prompt_ids), np.int64))
    else:
        ids, mask = np.asarray(prompt_ids, np.int64), np.asarray(attention_mask, np.int64)
    check_context(layout, ids.shape[1], max_new_tokens)
    batch = ids.shape[0]
    cache = {name: np.zeros((batch, layout.kv_heads, 0, layout.head_dim), dtype=layout.dtype)
             for name in layout.inputs if name.startswith(PAST)}
    feed, pos = ids, positions(mask)
    done = np.zeros(batch, dtype=bool)
    tokens = []
    for _ in range(max_new_tokens):
        outputs = dict(zip(layout.outputs, run(_arrays(layout, feed, mask, pos, cache))))
        chosen = pick(outputs["logits"], done, pad, eos_token_id)
        tokens.append(chosen)
        if done.all():
            break
        cache = presented(outputs, cache)
        mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        feed, pos = chosen[:, None], (mask.sum(axis=1, keepdims=True) - 1).astype(np.int64)
    return np.stack(tokens, axis=1)


def pick(logits, done, pad: int, eos_token_id: int | None):
    """The greedy token of each row's last position (``pad`` for rows that ended); marks in
    ``done`` the rows that chose the end of sequence."""
    import numpy as np

    chosen = np.where(done, pad, np.argmax(logits[:, -1, :], axis=-1).astype(np.int64))
    if eos_token_id is not None:
        done |= chosen == eos_token_id
    return chosen


def presented(outputs: dict, cache: dict) -> dict:
    """The next step's cache: ``present.X`` fed back as ``past_key_values.X``."""
    return {name: outputs[PRESENT + name[len(PAST):]] for name in cache}


def check_context(layout: StepLayout, prompt_length: int, max_new_tokens: int) -> None:
    if layout.max_context is not None and prompt_length + max_new_tokens > layout.max_context:
        raise BuildsysError(f"a prompt of {prompt_length} tokens and {max_new_tokens} new tokens need "
                            f"{prompt_length + max_new_tokens} positions, and the artifact holds {layout.max_context}",
                            hint="shorten the prompt or generate fewer tokens, or rebuild with a larger "
                                 "model.generation.max_context (up to the model's positions)")


def _arrays(layout: StepLayout, ids, mask, pos, cache) -> list:
    given = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, **cache}
    missing = [name for name in layout.inputs if name not in given]
    if missing:
        raise BuildsysError(f"the step artifact has inputs the generation loop does not know: {', '.join(missing)}")
    return [given[name] for name in layout.inputs]
