"""Build the transformers model for the manifest's task, export-friendly, with its samples.

Weights: safetensors; a pickled ``pytorch_model.bin`` only when no safetensors exist, and then
through transformers' ``torch.load(weights_only=True)`` (tensors only, no code runs). Attention:
``model.attention`` as ``describe`` resolved it (``attention.py``: eager where an ONNX exporter
consumes the program, sdpa for torch-only targets; eager where the class has no sdpa);
mixture-of-experts layers: ``batched_mm`` (``experts``). WavLM's and SEW's shape arithmetic is
rewritten so one program takes every batch and length (``audio_shapes.py``).
``use_cache=False`` except for ``text-generation``, whose model is wrapped as one decoder step
with an explicit KV cache (``step.py``), and ``text2text-generation`` (and
``automatic-speech-recognition`` on Whisper), whose model becomes a decoder step with the encoder
as a companion program (``seq2seq_step.py``).
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError

from .attention import unsupported as unsupported_attention
from .audio_shapes import patch_audio
from .describe import read_config
from .resolve import model_dir
from .rotary import broadcast_rotary
from .tasks import task_for

SEED = 0  # heads missing from the checkpoint are initialised the same in every worker


def load_model(model, root: Path):
    import torch
    import transformers

    folder = model_dir(model, root)
    config = read_config(folder)
    task = task_for(config, model.task)
    check_weights(folder)
    torch.manual_seed(SEED)
    generation = task.step in ("kv-cache", "seq2seq")
    attention = model.attention or "eager"  # a block describe did not complete: today's choice
    if generation:
        from .step import ATTENTION, register_attention

        register_attention()
        attention = ATTENTION
    try:
        module, fallback = _pretrained(transformers, folder, model, task, generation, attention)
    except (OSError, ValueError) as exc:
        raise BuildsysError(f"transformers cannot build '{model.id}' for task '{task.name}': "
                            f"{str(exc).splitlines()[0]}") from None
    module.config.return_dict = True
    broadcast_rotary(module)  # older transformers' rotary matmul pins an exported batch to != 1
    rewrites = patch_audio(module)  # WavLM's and SEW's shape arithmetic pins batch / audio length
    if task.step == "seq2seq":
        return _seq2seq_programs(module.eval(), folder, model)
    if generation:
        return _generation_step(module.eval(), folder, model)
    from .samples import samples_for

    module.buildsys_samples = lambda: samples_for(module.config, folder, model)
    module.buildsys_loaded_as = loaded_as(module, fallback, rewrites)
    return module.eval()


def _pretrained(transformers, folder: Path, model, task, generation: bool, attention: str):
    """(module, why sdpa fell back to eager or None): ``attention`` unless the class lacks sdpa."""
    import torch

    auto = getattr(transformers, task.auto_class)
    hf_config = transformers.AutoConfig.from_pretrained(str(folder), trust_remote_code=model.trust_remote_code,
                                                        local_files_only=True)
    for part in (hf_config, getattr(hf_config, "text_config", None)):
        if part is not None and hasattr(part, "use_cache"):
            part.use_cache = generation

    def load(implementation: str):
        # float32 whatever the checkpoint holds (the hub's Qwen2 and Llama are bf16): the inputs and
        # the cache are declared float32, and precision targets lower the program afterwards
        return auto.from_pretrained(str(folder), config=hf_config, attn_implementation=implementation,
                                    dtype=torch.float32, trust_remote_code=model.trust_remote_code,
                                    local_files_only=True, **experts(transformers))

    try:
        return load(attention), None
    except (ValueError, KeyError) as exc:
        reason = None if attention == "eager" else fallback_reason(exc, attention)
        if reason is None:
            raise
        if generation:  # no eager fallback: its attention pins the step graph to prefill or decode (seq != 1)
            name = (getattr(hf_config, "architectures", None) or [hf_config.model_type])[0]
            raise BuildsysError(f"{name} cannot be built as a generation step: {reason}. The step's one graph "
                                "serves prefill and decode through an attention function of its own (eager "
                                "attention pins it to one of them)",
                                hint="not supported yet for this architecture; its forward pass exports with "
                                     "task feature-extraction") from None
        return load("eager"), reason


def fallback_reason(exc: Exception, attention: str) -> str | None:
    """Why ``attention`` cannot serve this class, when loading it failed for that; else None. A
    class whose attention does not go through transformers' attention interface refuses sdpa
    (ValueError), or looks the generation step's registered attention up in a table of its own
    (GPT-Neo, and Falcon before transformers 5.25: KeyError on the name)."""
    if isinstance(exc, KeyError):
        return (f"its attention does not go through transformers' attention interface ({attention!r} unknown to it)"
                if exc.args == (attention,) else None)
    return unsupported_attention(exc)


def loaded_as(module, fallback: str | None, rewrites: list[str]) -> dict:
    """How the source loaded the model, for the artifact's meta: the attention implementation in
    use (and why not the one asked for), and the rewrites that make its program shape-generic."""
    record = {"attention": getattr(module.config, "_attn_implementation", None) or "eager"}
    if fallback:
        record["attention_fallback"] = f"sdpa asked, eager used: {fallback}"
    if rewrites:
        record["rewrites"] = rewrites
    return record


def _generation_step(causal_lm, folder: Path, model):
    """The one-step module the torch chain exports; its samples are prompts and a decode step."""
    from .prompts import step_samples
    from .step import step_module

    step = step_module(causal_lm)
    step.buildsys_samples = lambda: step_samples(step, folder, model)
    return step


def _seq2seq_programs(seq2seq_lm, folder: Path, model):
    """The decoder step (the primary program) with the encoder as its companion program."""
    from .seq2seq import encoder_inputs
    from .seq2seq_samples import generation_ids, step_samples
    from .seq2seq_step import encoder_module, step_module

    step = step_module(seq2seq_lm)
    encoder = encoder_module(seq2seq_lm)
    dims = model.model_dump(mode="json", exclude_none=True)["dims"]
    inputs = encoder_inputs(read_config(folder))
    used = {dim for spec in inputs for dim in spec["shape"] if isinstance(dim, str)}
    program = (encoder, inputs, {k: v for k, v in dims.items() if k in used},
               {"generation": generation_ids(folder, seq2seq_lm.config)})
    step.buildsys_programs = lambda: {"encoder": program}
    step.buildsys_samples = lambda: step_samples(step, encoder, folder, model)
    return step


def experts(transformers) -> dict:
    """Mixture-of-experts layers as ``batched_mm``: every token's chosen experts gathered and
    multiplied in one batch, no data-dependent shapes. The default ``grouped_mm`` fails on CPU for
    widths not a multiple of 16 bytes (Mixtral) or falls back to a custom op ``transformers::``
    that neither a saved program's reader nor the ONNX exporter knows (Qwen3-MoE); ``eager``
    loops over the experts a batch hits, a data-dependent shape export cannot trace."""
    if not hasattr(transformers.PreTrainedModel, "set_experts_implementation"):  # transformers 4: no choice
        return {}
    return {"experts_implementation": "batched_mm"}


def check_weights(folder: Path) -> None:
    if any(folder.glob("*.safetensors")):
        return
    if not any(folder.glob("pytorch_model*.bin")):
        raise BuildsysError(f"{folder} holds no weights (*.safetensors or pytorch_model.bin)")
