"""The Hugging Face source: ``framework: huggingface`` names a model by ``id`` and ``task``.

The model is a ``torch.module`` like the torch source's, so every torch target (torch.exported,
ONNX and what builds from it, AOTInductor) builds from it. Inputs and dims come from the config
(``describe``, plan time), samples from the model's own tokenizer / image processor / feature
extractor (``buildsys_samples`` on the loaded module), output names from the model's ModelOutput.
``task: text-generation`` exports one decoder step with an explicit KV cache (``causal.py``,
``step.py``); validation also generates through the artifact (``agreement.py``, ``generate.py``).
Generation models' artifacts carry their tokenizer (``tokenizer.py``: the source's companion files).
Offline unless the manifest sets ``allow_download``; remote code refused unless
``trust_remote_code``.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import Requirement, SourceSpec, hookimpl

__version__ = "0.1.0"

TORCH = Requirement("torch", ">=2.11", "pip install torch==2.13.0  (CPU build; see README)")
TRANSFORMERS = Requirement("transformers", ">=4.50", "pip install 'buildsys[huggingface]'")

# What identifies a model in its folder: config, weights, tokenizer and preprocessor files.
# (Other formats a hub folder may hold — ONNX, TF, Flax — do not change what is built.)
FINGERPRINTED = ("*.json", "*.txt", "*.model", "*.safetensors")


def _describe(model, root, target_kinds=frozenset()):
    from .describe import describe

    return describe(model, root, target_kinds)


def _load(model, root):
    from .load import load_model

    return load_model(model, root)


def fingerprint(model, root) -> list[Path]:
    """The model folder's config, tokenizer, preprocessor and weight files (the core hashes them,
    memoised by size and mtime); pickled .bin weights only where no safetensors exist."""
    from .resolve import model_dir

    folder = model_dir(model, Path(root))
    files = [p for pattern in FINGERPRINTED for p in folder.glob(pattern) if p.is_file()]
    if not any(p.suffix == ".safetensors" for p in files):
        files += [p for p in folder.glob("pytorch_model*.bin") if p.is_file()]
    return sorted(files)


def _companions(model, root):
    from .tokenizer import companions

    return companions(model, root)


def _check_chain(model, stages):
    from .seq2seq import check_chain

    return check_chain(model, stages)


@hookimpl
def buildsys_register_sources():
    return [SourceSpec(framework="huggingface", kind="torch.module", fingerprint=fingerprint, load=_load,
                       describe=_describe, check_chain=_check_chain,
                       companions=_companions, requires=(TORCH, TRANSFORMERS))]


@hookimpl
def buildsys_tool_versions():
    version = TRANSFORMERS.installed_version()
    return {"transformers": version} if version else {}


@hookimpl
def buildsys_validation_checks(artifact, names, run=None, ctx=None):
    """Validation by generation for ``text-generation`` and ``text2text-generation``: greedy tokens
    through the artifact (its runner, driven by ``generate`` / ``generate_seq2seq``) against the
    eager model's ``generate()``."""
    if run is None or ctx is None or getattr(ctx.model, "framework", None) != "huggingface":
        return None
    if not any(spec.name.startswith("past_key_values.") for spec in ctx.model.inputs):
        return None
    from .agreement import check

    return check(run, names, ctx, artifact.precision, artifact)
