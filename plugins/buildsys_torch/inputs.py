"""Inputs from the manifest: example tensors for export, samples for validation, dynamic dims.

A dynamic dim's example size is at least 2: exporting with 1 specialises the dim to a constant.
Validation samples cover each dim's min, opt and max, so a batch of 1 is checked even though
the export never saw one.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError

DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "float64": "float64",
          "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8",
          "bool": "bool"}


def dim_bounds(model) -> dict[str, tuple[int, int, int]]:
    """name -> (min, opt, max) over all of a dim's profiles (buckets span first..last)."""
    bounds = {}
    for name, dim in model.dims.items():
        ranges = dim.ranges()
        bounds[name] = (ranges[0][0], ranges[0][1] if len(ranges) == 1 else ranges[-1][0], ranges[-1][2])
    return bounds


def example_size(low: int, opt: int, high: int) -> int:
    return min(max(2, opt), high) if high >= 2 else high


def require_inputs(model) -> None:
    if not model.inputs:
        raise BuildsysError("a torch model needs model.inputs (name, dtype, shape) to be exported",
                            hint="e.g. inputs: [{name: images, dtype: float32, shape: [batch, 3, 224, 224]}]")


def shape_for(spec, sizes: dict[str, int]) -> list[int]:
    return [sizes[d] if isinstance(d, str) else d for d in spec.shape]


def make_tensor(spec, shape: list[int], generator):
    import torch

    dtype = getattr(torch, DTYPES[spec.dtype])
    if dtype.is_floating_point:
        if spec.range is not None:
            low, high = spec.range
            return (torch.rand(shape, generator=generator) * (high - low) + low).to(dtype)
        return torch.randn(shape, generator=generator).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    low, high = (int(spec.range[0]), int(spec.range[1])) if spec.range is not None else (0, 100)
    return torch.randint(low, high, shape, generator=generator, dtype=dtype)


def example_inputs(model, seed: int = 0) -> tuple:
    """One example per input, every dynamic dim at its example size (>= 2)."""
    import torch

    require_inputs(model)
    sizes = {name: example_size(*b) for name, b in dim_bounds(model).items()}
    generator = torch.Generator().manual_seed(seed)
    return tuple(make_tensor(spec, shape_for(spec, sizes), generator) for spec in model.inputs)


def dynamic_shapes(model) -> tuple:
    """torch.export dynamic_shapes for a ``forward(*inputs)``: one Dim per manifest dim, shared
    by every input using it (the outer 1-tuple is the ``*inputs`` parameter)."""
    from torch.export import Dim

    dims = {name: Dim(name, min=low, max=high) for name, (low, _, high) in dim_bounds(model).items()
            if high > low and high >= 2}
    return (tuple({axis: dims[d] for axis, d in enumerate(spec.shape) if isinstance(d, str) and d in dims}
                  for spec in model.inputs),)


def dynamic_dims(model) -> dict[str, dict[str, str]]:
    """input name -> {axis: dim name}, as recorded in artifact metadata."""
    return {spec.name: {str(axis): d for axis, d in enumerate(spec.shape) if isinstance(d, str)}
            for spec in model.inputs}


def default_samples(model, seed: int = 1) -> list[tuple]:
    """Three samples: every dim at its min, at its opt, at its max (deduplicated)."""
    import torch

    require_inputs(model)
    bounds = dim_bounds(model)
    generator = torch.Generator().manual_seed(seed)
    chosen, samples = [], []
    for pick in (0, 1, 2):
        sizes = {name: b[pick] for name, b in bounds.items()}
        if sizes in chosen:
            continue
        chosen.append(sizes)
        samples.append(tuple(make_tensor(spec, shape_for(spec, sizes), generator) for spec in model.inputs))
    return samples


def samples(model, root: Path, module=None) -> list[tuple]:
    """The manifest's ``samples`` entrypoint's output as tuples of tensors; else the samples the
    source attached to ``module`` (``buildsys_samples()``: the Hugging Face source tokenizes
    sentences); else default samples."""
    import torch

    from buildsys import load_samples

    produced = load_samples(model, root)
    if produced is None and callable(getattr(module, "buildsys_samples", None)):
        produced = [[sample[s.name] for s in model.inputs] for sample in module.buildsys_samples()]
    if produced is None:
        return default_samples(model)
    return [tuple(torch.as_tensor(v) for v in sample) for sample in produced]
