"""Inputs and dims of one decoder step with an explicit KV cache (``task: text-generation``), from
config.json alone (plan time: no torch, no model code).

The layout Optimum and ONNX Runtime GenAI use, so their runtimes load our ONNX as it is::

    input_ids        int64    [batch, seq]            the new tokens of this step
    attention_mask   int64    [batch, total]          1 for every real token, cached and new (total = past + seq)
    position_ids     int64    [batch, seq]            positions of the new tokens (left padding skips pads)
    past_key_values.N.key / .value  float32 [batch, kv_heads, past, head_dim]   layer N's cache
    -> logits [batch, seq, vocab], present.N.key / present.N.value [batch, kv_heads, total, head_dim]

One graph serves prefill (``past`` 0, ``seq`` the prompt) and decode (``seq`` 1). The dims'
min/opt/max add up (``total = past + seq`` at each), because the torch exporter's sample check
and TensorRT's profiles take every dim at its min, its opt and its max together.
"""

from __future__ import annotations

from buildsys import BuildsysError

DEFAULT_CONTEXT_CAP = 512  # bound the exported range when the model allows more (override: max_context)
BATCH = {"min": 1, "opt": 2, "max": 8}
OPT = 16  # typical prompt / cache length the graph is traced and tuned at


def layout(config: dict) -> dict:
    """layers, kv_heads, head_dim, vocab and position limit of a decoder config (GPT-2's names too)."""
    text = config.get("text_config") or config
    layers = _first(text, "num_hidden_layers", "n_layer", "num_layers")
    heads = _first(text, "num_attention_heads", "n_head", "num_heads")
    hidden = _first(text, "hidden_size", "n_embd", "d_model")
    if not (layers and heads and hidden):
        raise BuildsysError(f"cannot read the decoder layout (layers, heads, hidden size) from config.json of "
                            f"model type '{config.get('model_type')}'",
                            hint="declare model.inputs and model.dims in the manifest")
    kv_heads = _first(text, "num_key_value_heads", "n_kv_heads", "multi_query_group_num") or heads
    if text.get("multi_query"):  # GPT-BigCode / Falcon-style multi-query attention
        kv_heads = 1
    head_dim = text.get("head_dim") or hidden // heads
    positions = _first(text, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length")
    return {"layers": int(layers), "kv_heads": int(kv_heads), "head_dim": int(head_dim),
            "vocab": int(text.get("vocab_size") or 2), "positions": int(positions) if positions else None}


def _first(config: dict, *keys: str):
    return next((config[k] for k in keys if isinstance(config.get(k), int) and config[k] > 0), None)


def max_context(config: dict, generation) -> int:
    """The manifest's ``generation.max_context``, else the model's position limit (at most 512);
    a context above the model's positions is refused."""
    return bounded_context(layout(config)["positions"], generation)


def bounded_context(positions: int | None, generation) -> int:
    """``generation.max_context`` checked against ``positions`` (None: relative positions, no
    limit), or the default: the positions, at most ``DEFAULT_CONTEXT_CAP``."""
    asked = getattr(generation, "max_context", None)
    if asked is None:
        return min(positions or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)
    if positions is not None and asked > positions:
        raise BuildsysError(f"generation.max_context {asked} is above the model's {positions} positions "
                            f"(config.json max_position_embeddings / n_positions)",
                            hint=f"set max_context to at most {positions}; positions past it were never trained "
                                 "(learned position tables have no row for them)")
    return asked


# Decoders whose cache holds recurrent (state-space, RWKV, linear-attention) state besides or
# instead of keys and values: the step layout has no tensors for it.
RECURRENT = {"mamba", "mamba2", "falcon_mamba", "jamba", "bamba", "zamba", "zamba2", "rwkv", "recurrent_gemma",
             "xlstm", "lfm2", "lfm2_moe", "falcon_h1", "granitemoehybrid", "qwen3_next", "nemotron_h", "minimax"}
ATTENTION_LAYERS = {"full_attention", "sliding_attention"}


def check_cache(config: dict, context: int) -> None:
    """Refuse, naming the layout and the way out, a cache the step's past/present tensors cannot
    carry: recurrent state, or a sliding window shorter than the context (its cache keeps only
    the window, so present would not be past + seq)."""
    text = config.get("text_config") or config
    kinds = set(text.get("layer_types") or []) - ATTENTION_LAYERS
    if config.get("model_type") in RECURRENT or kinds:
        what = f"layer types {', '.join(sorted(kinds))}" if kinds else f"model type '{config.get('model_type')}'"
        raise BuildsysError(f"the cache of this model ({what}) holds recurrent state, not only keys and values, and "
                            "the generation step carries past_key_values.N.key/value only",
                            hint="not supported yet; export its forward pass (task: feature-extraction) instead")
    window = text.get("sliding_window")
    if isinstance(window, int) and window > 0 and text.get("use_sliding_window") is not False and context > window:
        raise BuildsysError(f"this model attends over a sliding window of {window} tokens, so its cache keeps only the "
                            f"last {window} keys, and a context of {context} would need the step to drop cache entries "
                            "(present would no longer be past + seq)",
                            hint=f"set model.generation.max_context to at most {window}")


def derived(config: dict, generation) -> tuple[list[dict], dict]:
    """The step's inputs and dims (see the module docstring)."""
    shape = layout(config)
    context = max_context(config, generation)
    check_cache(config, context)
    inputs = [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [0, shape["vocab"]]},
              {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "total"], "range": [1, 2]},
              {"name": "position_ids", "dtype": "int64", "shape": ["batch", "seq"], "range": [0, context]}]
    for layer in range(shape["layers"]):
        for part in ("key", "value"):
            inputs.append({"name": f"past_key_values.{layer}.{part}", "dtype": "float32",
                           "shape": ["batch", shape["kv_heads"], "past", shape["head_dim"]]})
    seq = {"min": 1, "opt": min(OPT, context), "max": context}
    past = {"min": 0, "opt": min(OPT, context - 1), "max": context - 1}
    total = {key: seq[key] + past[key] for key in ("min", "opt", "max")}
    return inputs, {"batch": dict(BATCH), "seq": seq, "past": past, "total": total}


def output_names(config: dict) -> list[str]:
    layers = layout(config)["layers"]
    return ["logits"] + [f"present.{n}.{part}" for n in range(layers) for part in ("key", "value")]
