"""The tokenizer travels with the artifact: a generation model's tokenizer files (and its config
and generation config, which ``AutoTokenizer`` and the loop read for the special ids) are the
source's companion files (``SourceSpec.companions``), copied by the core into every artifact built
from the model under ``tokenizer/``, checksummed with the rest. ``from_artifact`` opens them.
"""

from __future__ import annotations

from pathlib import Path

from .describe import TOKENIZER_FILES

FOLDER = "tokenizer"
# What AutoTokenizer.save_pretrained writes beside the vocabulary files (BPE merges, the settings
# and special tokens), a speech model's feature extractor settings, and the config files that
# name the tokenizer class and the generation ids. Only names the source's fingerprint covers
# (*.json, *.txt, *.model).
FILES = (*TOKENIZER_FILES, "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "merges.txt",
         "normalizer.json", "preprocessor_config.json", "config.json", "generation_config.json")
GENERATION_STEPS = ("kv-cache", "seq2seq")


def companions(model, root) -> dict[str, Path]:
    """``{tokenizer/<file>: path}`` of a generation model's folder; nothing for other tasks."""
    from .describe import read_config
    from .resolve import model_dir
    from .tasks import task_for

    folder = model_dir(model, Path(root))
    if task_for(read_config(folder), model.task).step not in GENERATION_STEPS:
        return {}
    return {f"{FOLDER}/{name}": folder / name for name in FILES if (folder / name).is_file()}


def from_artifact(directory: str | Path):
    """The tokenizer a generation artifact carries (``buildsys.load`` checked its files)."""
    from transformers import AutoTokenizer

    from buildsys import BuildsysError

    folder = Path(directory) / FOLDER
    if not folder.is_dir():
        raise BuildsysError(f"{directory} carries no tokenizer (no {FOLDER}/ folder)",
                            hint="rebuild it: artifacts of text-generation and text2text-generation models carry "
                                 "their tokenizer since torch.export version 3")
    # the model's config.json comes along, its auto_map too where the model had code of its own; the
    # artifact carries no code, so none runs, and transformers asks nothing on stdin (15 s)
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
