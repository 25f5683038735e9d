"""Build the transformers model for the manifest's task, export-friendly, with its samples.

Weights: safetensors; a pickled ``pytorch_model.bin`` only when no safetensors exist, and then
through transformers' ``torch.load(weights_only=True)`` (tensors only, no code runs). Attention:
``eager`` — the fused kernels block the ONNX exporter for some architectures (T5, Swin) and
eager is exact on every path. ``use_cache=False``: no task here generates.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError

from .describe import read_config
from .resolve import model_dir
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
    auto = getattr(transformers, task.auto_class)
    try:
        hf_config = transformers.AutoConfig.from_pretrained(str(folder), trust_remote_code=model.trust_remote_code,
                                                            local_files_only=True)
        for part in (hf_config, getattr(hf_config, "text_config", None)):
            if part is not None and hasattr(part, "use_cache"):
                part.use_cache = False
        module = auto.from_pretrained(str(folder), config=hf_config, attn_implementation="eager",
                                      trust_remote_code=model.trust_remote_code, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BuildsysError(f"transformers cannot build '{model.id}' for task '{task.name}': "
                            f"{str(exc).splitlines()[0]}") from None
    module.config.return_dict = True
    from .samples import samples_for

    module.buildsys_samples = lambda: samples_for(module.config, folder, model)
    return module.eval()


def check_weights(folder: Path) -> None:
    if any(folder.glob("*.safetensors")):
        return
    if not any(folder.glob("pytorch_model*.bin")):
        raise BuildsysError(f"{folder} holds no weights (*.safetensors or pytorch_model.bin)")
