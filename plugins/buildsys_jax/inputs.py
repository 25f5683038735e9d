"""The manifest's inputs for JAX: concrete and symbolic argument specs, samples, compile sizes.

jax.export traces once with symbolic dims (``batch``), each bounded by the manifest's min and
max as constraints, so the StableHLO holds one program for every size and asserts the bounds at
call time. An XLA executable, in contrast, is static-shaped: one per combination of sizes.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from buildsys import BuildsysError, StageFailed, load_samples


def require_inputs(model) -> None:
    if not model.inputs:
        raise BuildsysError("a jax model needs model.inputs (name, dtype, shape) to be exported",
                            hint="e.g. inputs: [{name: x, dtype: float32, shape: [batch, 32]}]")


def dim_bounds(model) -> dict[str, tuple[int, int, int]]:
    """name -> (min, opt, max) over all of a dim's profiles (buckets span first..last)."""
    bounds = {}
    for name, dim in model.dims.items():
        ranges = dim.ranges()
        opt = ranges[0][1] if len(ranges) == 1 else ranges[-1][0]
        bounds[name] = (ranges[0][0], opt, ranges[-1][2])
    return bounds


def shape_for(spec, sizes: dict[str, Any]) -> tuple:
    return tuple(sizes[d] if isinstance(d, str) else d for d in spec.shape)


def dtype_of(spec):
    import jax.numpy as jnp

    return jnp.dtype(spec.dtype)  # knows bfloat16, unlike numpy


def example_specs(model) -> list:
    """``ShapeDtypeStruct``s with every dim at its opt size: a concrete trace checks the inputs."""
    import jax

    require_inputs(model)
    sizes = {name: opt for name, (_, opt, _) in dim_bounds(model).items()}
    return [jax.ShapeDtypeStruct(shape_for(s, sizes), dtype_of(s)) for s in model.inputs]


def symbolic_specs(model) -> list:
    """``ShapeDtypeStruct``s with one symbolic dim per varying manifest dim, bounded by min/max."""
    import jax
    from jax import export

    require_inputs(model)
    bounds = dim_bounds(model)
    varying = [name for name, (low, _, high) in bounds.items() if high > low]
    sizes: dict[str, Any] = {name: low for name, (low, _, high) in bounds.items() if high == low}
    if varying:
        too_small = [name for name in varying if bounds[name][0] < 1]
        if too_small:
            raise StageFailed(f"dim(s) {', '.join(too_small)} may be 0, but jax.export's symbolic dims are >= 1",
                              hint="set min: 1 for them in model.dims")
        constraints = [c for name in varying for c in (f"{name} >= {bounds[name][0]}", f"{name} <= {bounds[name][2]}")]
        try:
            symbols = export.symbolic_shape(", ".join(varying), constraints=constraints)
        except Exception as exc:
            raise StageFailed(f"jax.export cannot use the dims {varying} as symbols: {exc}",
                              hint="dim names must be identifiers (letters, digits, _)") from None
        sizes.update(zip(varying, symbols))
    return [jax.ShapeDtypeStruct(shape_for(s, sizes), dtype_of(s)) for s in model.inputs]


def dims_summary(model) -> dict[str, list[int]]:
    """dim -> [min, max], as recorded in artifact metadata and checked by the runners."""
    return {name: [low, high] for name, (low, _, high) in dim_bounds(model).items()}


def dynamic_dims(model) -> dict[str, dict[str, str]]:
    """input name -> {axis: dim name}."""
    return {s.name: {str(axis): d for axis, d in enumerate(s.shape) if isinstance(d, str)} for s in model.inputs}


def make_array(spec, shape: tuple, rng):
    """Random values of the input's dtype: normal floats, ints in ``range`` (default [0, 100))."""
    import numpy as np

    dtype = dtype_of(spec)
    if spec.dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        low, high = (int(spec.range[0]), int(spec.range[1])) if spec.range is not None else (0, 100)
        return rng.integers(low, high, shape).astype(dtype)
    if spec.range is not None:
        return rng.uniform(spec.range[0], spec.range[1], shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def arrays_at(model, sizes: dict[str, int], seed: int) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [make_array(spec, shape_for(spec, sizes), rng) for spec in model.inputs]


def default_samples(model, seed: int = 1) -> list[list]:
    """Three samples: every dim at its min, at its opt, at its max (deduplicated)."""
    require_inputs(model)
    bounds = dim_bounds(model)
    chosen: list[dict[str, int]] = []
    for pick in (0, 1, 2):
        sizes = {name: b[pick] for name, b in bounds.items()}
        if sizes not in chosen:
            chosen.append(sizes)
    return [arrays_at(model, sizes, seed + i) for i, sizes in enumerate(chosen)]


def samples(model, root: Path) -> list[list]:
    """The manifest's ``samples`` entrypoint's output as lists of numpy arrays, or default samples."""
    import numpy as np

    produced = load_samples(model, root)
    if produced is None:
        return default_samples(model)
    return [[np.asarray(value) for value in sample] for sample in produced]


def size_grid(model, sizes: dict[str, list[int]] | None) -> list[dict[str, int]]:
    """Every combination of sizes to compile: ``sizes`` per dim, else each dim's min, opt, max."""
    bounds = dim_bounds(model)
    unknown = sorted(set(sizes or {}) - set(bounds))
    if unknown:
        raise StageFailed(f"sizes name dim(s) {', '.join(unknown)}, which model.dims does not declare",
                          hint=f"declared dims: {', '.join(bounds) or 'none'}")
    chosen = {name: sorted(set((sizes or {}).get(name) or b)) for name, b in bounds.items()}
    for name, values in chosen.items():
        low, _, high = bounds[name]
        outside = [v for v in values if not low <= v <= high]
        if outside:
            raise StageFailed(f"sizes {outside} for dim '{name}' are outside model.dims ({low}..{high})")
    names = list(chosen)
    return [dict(zip(names, combo)) for combo in itertools.product(*(chosen[n] for n in names))]
