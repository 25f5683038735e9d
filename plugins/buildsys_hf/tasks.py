"""Tasks: which transformers Auto class builds the model, what it reads, and which model types
support it — answered from transformers' own auto tables without importing transformers (its
auto module imports torch; planning must not).

A task is a frozen record. ``text-generation`` (``step: kv-cache``) is one decoder step with an
explicit KV cache (``causal.py`` derives its inputs, ``step.py`` wraps the model);
``text2text-generation`` (``step: seq2seq``) an encoder and a decoder step (``seq2seq.py``,
``seq2seq_step.py``), as is ``automatic-speech-recognition`` on a speech encoder-decoder (Whisper:
``SPEECH_SEQ2SEQ``; on a CTC encoder it stays one forward pass).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from buildsys import BuildsysError


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str      # transformers.<auto_class>.from_pretrained builds the model
    mapping: str         # the MODEL_FOR_..._MAPPING_NAMES table in transformers' modeling_auto
    modality: str        # text | image | audio | text+image | any (decided by the config)
    step: str = "forward"  # forward: one pass; kv-cache: one decoder step with an explicit KV cache;
    #                        seq2seq: an encoder and a decoder step with self- and cross-attention caches


TASKS = {t.name: t for t in (
    Task("feature-extraction", "AutoModel", "MODEL_MAPPING_NAMES", "any"),
    Task("fill-mask", "AutoModelForMaskedLM", "MODEL_FOR_MASKED_LM_MAPPING_NAMES", "text"),
    Task("text-classification", "AutoModelForSequenceClassification",
         "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "text"),
    Task("token-classification", "AutoModelForTokenClassification",
         "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES", "text"),
    Task("question-answering", "AutoModelForQuestionAnswering", "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES", "text"),
    Task("image-classification", "AutoModelForImageClassification",
         "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", "image"),
    Task("image-feature-extraction", "AutoModel", "MODEL_FOR_IMAGE_MAPPING_NAMES", "image"),
    Task("audio-classification", "AutoModelForAudioClassification",
         "MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES", "audio"),
    Task("automatic-speech-recognition", "AutoModelForCTC", "MODEL_FOR_CTC_MAPPING_NAMES", "audio"),
    Task("zero-shot-image-classification", "AutoModelForZeroShotImageClassification",
         "MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES", "text+image"),
    Task("text-generation", "AutoModelForCausalLM", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "text", step="kv-cache"),
    Task("text2text-generation", "AutoModelForSeq2SeqLM", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "text",
         step="seq2seq"),
)}

# automatic-speech-recognition on an encoder-decoder (Whisper): the seq2seq path, its encoder
# reading spectrogram features (``input_features``) rather than tokens.
SPEECH_SEQ2SEQ = Task("automatic-speech-recognition", "AutoModelForSpeechSeq2Seq",
                      "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "audio", step="seq2seq")

# feature-extraction on an encoder-decoder (T5): AutoModel builds the whole T5Model, whose forward
# needs decoder inputs too; the encoder alone (T5EncoderModel) is the feature extractor.
TEXT_ENCODER = Task("feature-extraction", "AutoModelForTextEncoding", "MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES", "text")

# Architectures a task here cannot serve yet, and what to use instead.
GENERATION = ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
              "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES")


def task_for(config: dict, requested: str | None) -> Task:
    """The task the manifest asks for (``auto`` or none: from ``config.architectures``),
    checked against the model type."""
    model_type = config.get("model_type")
    if requested in (None, "auto"):
        return _auto(config)
    task = TASKS.get(requested)
    if task is None:
        raise BuildsysError(f"unknown task '{requested}'",
                            hint=f"tasks: {', '.join(TASKS)}, or auto (from config.architectures)")
    if served_by_own_code(config, task):
        return task
    if task.name == SPEECH_SEQ2SEQ.name and model_type in _tables().get(SPEECH_SEQ2SEQ.mapping, {}):
        return SPEECH_SEQ2SEQ
    if task.name == "feature-extraction" and config.get("is_encoder_decoder"):
        return encoder_of(config)
    supported = _tables().get(task.mapping, {})
    if task.step == "kv-cache":
        check_decoder(config)
    if supported and model_type not in supported:
        served = [t.name for t in TASKS.values() if model_type in _tables().get(t.mapping, {})]
        hint = (f"tasks this model type supports: {', '.join(served)}" if served else
                f"transformers knows no task for it; a model folder with code of its own names its classes in "
                f"config.json auto_map ({task.auto_class} for this task)")
        raise BuildsysError(f"task '{requested}' is not available for model type '{model_type}'", hint=hint)
    return task


def served_by_own_code(config: dict, task: Task) -> bool:
    """A model whose config.json ``auto_map`` names the task's Auto class brings the class itself
    (remote code, consented to in the manifest): transformers' tables cannot know its model type."""
    return task.auto_class in (config.get("auto_map") or {})


def encoder_of(config: dict) -> Task:
    """feature-extraction on an encoder-decoder: its encoder alone, where transformers has one."""
    model_type = config.get("model_type")
    if model_type in _tables().get(TEXT_ENCODER.mapping, {}):
        return TEXT_ENCODER
    raise BuildsysError(f"task 'feature-extraction' on '{model_type}' needs the decoder's inputs too (an "
                        "encoder-decoder), and transformers has no encoder-only class for it",
                        hint="use task: text2text-generation (encoder and decoder step), or export its encoder "
                             "from an entrypoint")


def check_decoder(config: dict) -> None:
    """A causal-LM task needs a decoder: an encoder (BERT's ``BertModel``, in the causal-LM table
    only as ``BertLMHeadModel``) or an encoder-decoder (T5, BART) is refused, naming the class."""
    tables = _tables()
    architectures = config.get("architectures") or []
    seq2seq = [a for a in architectures if any(a in _classes(tables.get(m, {})) for m in GENERATION[1:])]
    if seq2seq:
        raise BuildsysError(f"task 'text-generation' is for decoder-only models, and '{seq2seq[0]}' is an "
                            "encoder-decoder", hint="use task: text2text-generation for it")
    causal = tables.get(GENERATION[0], {})  # a type it does not list: task_for says so next
    heads = _classes(causal)
    if architectures and config.get("model_type") in causal and not any(a in heads for a in architectures):
        raise BuildsysError(f"task 'text-generation' needs a causal language model, and config.json names "
                            f"{', '.join(architectures)} (model type '{config.get('model_type')}'), which has no "
                            "language-modelling head that generates",
                            hint="pick a decoder checkpoint (a *ForCausalLM / *LMHeadModel), or another task")


def _auto(config: dict) -> Task:
    architectures = config.get("architectures") or []
    tables = _tables()
    # the specific heads first: CLIPModel is in the base table too, BertModel only there
    ordered = sorted([*TASKS.values(), SPEECH_SEQ2SEQ], key=lambda t: t.auto_class == "AutoModel")
    for arch in architectures:
        for task in ordered:
            if arch in _classes(tables.get(task.mapping, {})):
                if task.name == "feature-extraction" and config.get("is_encoder_decoder"):
                    return encoder_of(config)  # T5Model: its encoder alone
                return task
    own = [task for task in ordered if served_by_own_code(config, task)]
    if own:
        return own[0]
    arch = architectures[0] if architectures else None
    if arch is None:
        raise BuildsysError("task: auto needs config.json 'architectures', and this config names none",
                            hint=f"name the task: one of {', '.join(TASKS)}")
    raise BuildsysError(f"task: auto cannot serve architecture '{arch}'",
                        hint="name a task, e.g. 'task: feature-extraction' for the forward outputs")


def _classes(table: dict) -> set[str]:
    names: set[str] = set()
    for value in table.values():
        names.update(value if isinstance(value, tuple) else (value,))
    return names


@functools.cache
def _tables() -> dict[str, dict]:
    """``{MAPPING_NAME: {model_type: class name(s)}}`` parsed from transformers' modeling_auto.py."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations)), "models", "auto", "modeling_auto.py")
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return {}
    return {node.targets[0].id: _pairs(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id.endswith("MAPPING_NAMES") and isinstance(node.value, ast.Call)}


def _pairs(call: ast.Call) -> dict:
    pairs = {}
    for arg in call.args:
        for element in getattr(arg, "elts", []):
            try:
                key, value = ast.literal_eval(element)
            except (ValueError, TypeError, SyntaxError):
                continue
            pairs[key] = tuple(value) if isinstance(value, (list, tuple)) else value
    return pairs
