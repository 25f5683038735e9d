"""numpy <-> torch for runners and references: what every torch code path here shares."""

from __future__ import annotations


def to_numpy(tensor):
    """A tensor as a numpy array on the host (bf16, which numpy lacks, as float32)."""
    import torch

    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def to_tensors(arrays, device: str) -> list:
    """numpy arrays as tensors on ``device``."""
    import torch

    return [torch.from_numpy(a).to(device) for a in arrays]
