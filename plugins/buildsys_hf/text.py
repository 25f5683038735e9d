"""From text to text through a built generation artifact (public), with the tokenizer it carries
(``tokenizer/``: ``tokenizer.py``), for decoder-only and encoder-decoder models alike::

    import buildsys
    from buildsys_hf.text import generate_text
    session = buildsys.load("artifacts/tiny-llama-gen/1.0.0/onnx")       # or a tiny-t5-gen artifact
    texts = generate_text(session, ["once upon a time"], max_new_tokens=16)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import buildsys

from .generate import StepLayout, generate
from .prompts import special_ids
from .seq2seq_generate import Seq2SeqLayout, generate_seq2seq
from .static import generate_static
from .tokenizer import FOLDER, from_artifact


def generate_text(session, prompts: Sequence[str], max_new_tokens: int = 16, *, step=None) -> list[str]:
    """Greedy continuations of ``prompts`` (text in, text out) through ``session``, the
    ``buildsys.load`` of a ``text-generation`` or ``text2text-generation`` artifact (its primary,
    the decoder step; an encoder-decoder's encoder program is opened beside it), tokenized and
    decoded by the tokenizer the artifact carries. Special tokens are left out of the text.
    ``step``: ``static.load_step(session)`` of a decoder-only torch artifact, to decode through
    its static window (a CUDA graph per token on the GPU) instead of the numpy loop."""
    tokenizer = from_artifact(session.directory)
    ids = [tokenizer(text)["input_ids"] for text in prompts]
    if any(spec.name == "encoder_hidden_states" for spec in session.inputs):
        tokens = _seq2seq_tokens(session, ids, max_new_tokens)
    else:
        eos, pad_id = special_ids(tokenizer, _carried_config(session.directory))
        if step is not None:
            tokens = generate_static(step, ids, max_new_tokens, eos, pad_token_id=pad_id)
        else:
            tokens = generate(session, StepLayout.from_record(session.artifact), ids, max_new_tokens, eos,
                              pad_token_id=pad_id)
    return tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=True)


def _seq2seq_tokens(session, ids, max_new_tokens: int):
    encoder = buildsys.load(session.directory, device=session.device, program="encoder")
    return generate_seq2seq(encoder, session, Seq2SeqLayout.from_record(session.artifact), ids, max_new_tokens)


def _carried_config(directory: str | Path):
    """The model's config.json the artifact carries, for its ``eos_token_id`` (``special_ids``)."""
    from types import SimpleNamespace

    path = Path(directory) / FOLDER / "config.json"
    return SimpleNamespace(eos_token_id=json.loads(path.read_text()).get("eos_token_id") if path.is_file() else None)
