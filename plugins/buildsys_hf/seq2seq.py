"""Inputs and dims of an encoder-decoder model's two programs (``task: text2text-generation``:
T5, BART, Marian ...; ``automatic-speech-recognition`` on Whisper, whose encoder takes
``input_features`` float32 [batch, mel bins, frames] and gives a fixed number of rows), from
config.json alone (plan time: no torch, no model code).

The layout Optimum's seq2seq export and ONNX Runtime GenAI use::

    encoder       input_ids, attention_mask  int64 [batch, encoder_seq]  -> last_hidden_state
    decoder step  input_ids                  int64 [batch, seq]           the new decoder tokens
                  encoder_hidden_states      float32 [batch, encoder_seq, d_model]
                  encoder_attention_mask     int64 [batch, encoder_seq]
                  past_key_values.N.decoder.key / .value  [batch, heads, past, head_dim]
                  past_key_values.N.encoder.key / .value  [batch, heads, encoder_past, head_dim]
                  -> logits, present.N.decoder.key / .value, present.N.encoder.key / .value

One decoder graph serves the first step and every later one: the cross-attention cache is
computed from ``encoder_hidden_states`` on the first step (``encoder_past`` 0) and passed back
afterwards (``encoder_past`` = ``encoder_seq``), when the step projects only one encoder row
and drops it (``seq2seq_step.py``) — no branch, so it exports, and a later step costs what a
decoder-only step does instead of re-projecting the whole encoder output in every layer.

Context: ``max_context`` bounds the encoder input and the decoder sequence alike. Models with
learned positions (BART, Marian) refuse a context above ``max_position_embeddings``; T5's
relative positions have no limit, so its default is 512 (its pre-training length) and a larger
``max_context`` is taken as asked. A decoder step takes up to ``SEQ_MAX`` tokens at once (a
forced decoder prefix); ``past`` then reaches ``max_context - SEQ_MAX``.
"""

from __future__ import annotations

from buildsys import BuildsysError

from .causal import BATCH, OPT, _first, bounded_context

SEQ_MAX = 8


def layout(config: dict) -> dict:
    """decoder layers, heads, head_dim, d_model, vocab and position limit (None: relative positions)."""
    layers = _first(config, "decoder_layers", "num_decoder_layers", "num_layers")
    heads = _first(config, "decoder_attention_heads", "num_heads", "num_attention_heads")
    hidden = _first(config, "d_model", "hidden_size")
    if not (layers and heads and hidden):
        raise BuildsysError(f"cannot read the decoder layout (layers, heads, d_model) from config.json of "
                            f"model type '{config.get('model_type')}'",
                            hint="declare model.inputs and model.dims in the manifest")
    return {"layers": int(layers), "heads": int(heads), "head_dim": int(config.get("d_kv") or hidden // heads),
            "hidden": int(hidden), "vocab": int(config.get("vocab_size") or 2),
            "positions": _first(config, "max_position_embeddings", "max_target_positions")}


def max_context(config: dict, generation) -> int:
    """As a decoder-only model's (``causal.bounded_context``), with room for a decoder step."""
    asked = bounded_context(layout(config)["positions"], generation)
    if asked <= SEQ_MAX:
        raise BuildsysError(f"generation.max_context {asked} leaves no room for a decoder cache (a step takes up "
                            f"to {SEQ_MAX} tokens)", hint=f"set max_context above {SEQ_MAX}")
    return asked


def dims(context: int) -> dict:
    """The dims of both programs: min, opt and max consistent at once (the exporter's sample check
    and TensorRT-style profiles take every dim at its min, its opt and its max together)."""
    source = {"min": 1, "opt": min(OPT, context), "max": context}
    return {"batch": dict(BATCH), "encoder_seq": source, "encoder_past": {"min": 0, "opt": source["opt"],
                                                                         "max": context},
            "seq": {"min": 1, "opt": 2, "max": SEQ_MAX},
            "past": {"min": 0, "opt": min(OPT, context - SEQ_MAX), "max": context - SEQ_MAX}}


def speech(config: dict) -> bool:
    """A speech encoder (Whisper): spectrogram frames in, a fixed number of encoder rows out."""
    return "num_mel_bins" in config


def encoder_rows(config: dict) -> int:
    """A speech encoder's output length: ``max_source_positions``, its input frames halved by a
    stride-2 convolution (Whisper pads every input to that many frames)."""
    return int(config["max_source_positions"])


def encoder_inputs(config: dict) -> list[dict]:
    if speech(config):
        frames = 2 * encoder_rows(config)
        return [{"name": "input_features", "dtype": "float32", "shape": ["batch", int(config["num_mel_bins"]), frames]}]
    vocab = layout(config)["vocab"]
    return [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "encoder_seq"], "range": [0, vocab]},
            {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "encoder_seq"], "range": [1, 2]}]


def derived(config: dict, generation) -> tuple[list[dict], dict]:
    """The decoder step's inputs (the primary program's: what the manifest's model block holds) and
    the dims of both programs."""
    shape = layout(config)
    context = max_context(config, generation)
    inputs = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [0, shape["vocab"]]},
              {"name": "encoder_hidden_states", "dtype": "float32", "shape": ["batch", "encoder_seq", shape["hidden"]]},
              {"name": "encoder_attention_mask", "dtype": "int64", "shape": ["batch", "encoder_seq"], "range": [1, 2]}]
    for name, length in past_names(shape["layers"]):
        inputs.append({"name": name, "dtype": "float32",
                       "shape": ["batch", shape["heads"], length, shape["head_dim"]]})
    both = dims(context)
    if speech(config):  # the encoder gives a fixed number of rows; the decoder step takes any up to it
        rows = encoder_rows(config)
        both.update(encoder_seq={"min": 1, "opt": rows, "max": rows}, encoder_past={"min": 0, "opt": rows, "max": rows})
    return inputs, both


def past_names(layers: int) -> list[tuple[str, str]]:
    """(input name, its length dim) of every cache tensor, in the step's order."""
    return [(f"past_key_values.{n}.{part}.{kind}", "past" if part == "decoder" else "encoder_past")
            for n in range(layers) for part in ("decoder", "encoder") for kind in ("key", "value")]




# The stages that carry a companion program (the encoder) beside the primary; every other stage
# would build the decoder step alone, an artifact no generation loop can drive.
CARRIES_PROGRAMS = ("torch.export", "onnx.export", "onnx.ort", "onnx.fp16", "onnx.bf16", "tensorrt.plan")


def check_chain(model, stages: tuple[str, ...]) -> str | None:
    """Why a text2text-generation target cannot be built through ``stages`` (None: it can)."""
    if not any(spec.name == "encoder_hidden_states" for spec in model.inputs):
        return None
    other = next((stage for stage in stages if stage not in CARRIES_PROGRAMS), None)
    if other is None:
        return None
    return (f"stage '{other}' builds one graph, and a text2text-generation artifact holds two (encoder and "
            f"decoder step): encoder-decoder targets are torch.exported (fp32), and onnx, onnx.ort and tensorrt "
            "(fp32, fp16 or bf16) for now")
