"""Flatten a model's outputs to a tuple of tensors with stable names.

Every artifact (ExportedProgram, ONNX, AOTI package) returns outputs in the same order, named
after the original structure: ``output`` for one tensor, the keys of a dict or ModelOutput,
``output_0``.. for a sequence.
"""

from __future__ import annotations


def output_names(outputs) -> list[str]:
    import torch

    if isinstance(outputs, torch.Tensor):
        return ["output"]
    if isinstance(outputs, dict) or hasattr(outputs, "keys"):
        return [str(k) for k, v in outputs.items() if v is not None]
    return [f"output_{i}" for i in range(len(_leaves(outputs)))]


def flatten(outputs) -> tuple:
    import torch

    if isinstance(outputs, torch.Tensor):
        return (outputs,)
    if isinstance(outputs, dict) or hasattr(outputs, "keys"):
        return tuple(v for v in outputs.values() if v is not None)
    return tuple(_leaves(outputs))


def _leaves(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return []


def flat_module(module):
    """Wrap ``module`` so that ``forward(*inputs)`` returns a flat tuple of tensors."""
    import torch

    class Flat(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return flatten(self.inner(*args))

    return Flat(module).eval()
