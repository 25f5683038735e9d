"""Flatten a model's outputs to a tuple of tensors with stable names, and call a module with the
manifest's inputs.

Every artifact (ExportedProgram, ONNX, AOTI package) returns outputs in the same order, named
after the original structure: ``output`` for one tensor, the keys of a dict or ModelOutput,
``output_0``.. for a sequence. Nested structures are flattened fully, their names joined with
dots: CLIP's ``text_model_output.pooler_output``, ``hidden_states.0``.
"""

from __future__ import annotations

import inspect


def output_names(outputs) -> list[str]:
    import torch

    if isinstance(outputs, torch.Tensor):
        return ["output"]
    if _is_mapping(outputs):
        return [name for name, _ in _named_leaves(outputs, "")]
    return [f"output_{i}" for i in range(len(flatten(outputs)))]


def flatten(outputs) -> tuple:
    return tuple(leaf for _, leaf in _named_leaves(outputs, ""))


def _is_mapping(value) -> bool:
    return isinstance(value, dict) or hasattr(value, "keys")


def _named_leaves(value, prefix: str) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [(prefix or "output", value)]
    if _is_mapping(value):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (tuple, list)):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return []  # None, scalars, caches: not outputs
    return [leaf for key, item in items if item is not None
            for leaf in _named_leaves(item, f"{prefix}.{key}" if prefix else key)]


def by_name(module, names: list[str]) -> bool:
    """Whether ``module``'s forward() takes every input by name (a Hugging Face model's
    ``input_ids``, ``attention_mask``, …): then inputs are passed by keyword, so the order of
    forward()'s parameters does not matter; else positionally, in the manifest's order."""
    try:
        params = inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False
    return bool(names) and all(n in params and params[n].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                               inspect.Parameter.KEYWORD_ONLY) for n in names)


def call(module, names: list[str], args):
    """``module`` called with the manifest's inputs ``args``: by name where forward() names them."""
    if by_name(module, names):
        return module(**dict(zip(names, args)))
    return module(*args)


def flat_module(module, names: list[str] | None = None):
    """Wrap ``module`` so that ``forward(*inputs)`` returns a flat tuple of tensors; inputs reach
    ``module`` by name when ``names`` (the manifest's input names) are forward()'s parameters."""
    import torch

    keyword = by_name(module, list(names or []))

    class Flat(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return flatten(self.inner(**dict(zip(names, args))) if keyword else self.inner(*args))

    return Flat(module).eval()
