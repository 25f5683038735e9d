"""numpy <-> torch for runners and references: what every torch code path here shares."""

from __future__ import annotations


def to_numpy(tensor):
    """A tensor as a numpy array on the host (bf16, which numpy lacks, as float32)."""
    import torch

    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def to_tensors(arrays, device: str) -> list:
    """numpy arrays as contiguous tensors on ``device``: a compiled artifact (AOTInductor) reads
    its inputs as laid out contiguously whatever their strides say, so a transposed or sliced
    array would be read as other numbers (and ``from_numpy`` refuses negative strides)."""
    import numpy as np
    import torch

    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]
