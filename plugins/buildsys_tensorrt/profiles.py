"""Optimization profiles: the input shapes an engine serves, from the manifest's dims.

A dim given as ``{min, opt, max}`` is one range; a dim given as buckets (``[1-128, 129-512]``)
is one range per bucket, so that a short request runs with kernels tuned for short shapes
instead of paying for the longest. An engine gets one profile per combination of its dynamic
dims' ranges. Explicit profiles (the stage's ``profiles`` option) must cover every dynamic
input and stay inside the manifest's dims. Pure: the network's input shapes come in as tuples
with -1 for a dynamic axis, as TensorRT reports them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from buildsys import StageFailed

Triple = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


class ProfileError(StageFailed):
    """The profiles do not fit the network or the manifest; every problem is listed."""


@dataclass(frozen=True)
class Profile:
    """One optimization profile: (min, opt, max) shape per network input; ``dims``: the dim
    ranges it was made from (auto profiles), for artifact.json and for picking one at run time."""

    shapes: dict[str, Triple]
    dims: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"inputs": {name: {"min": list(t[0]), "opt": list(t[1]), "max": list(t[2])}
                           for name, t in self.shapes.items()},
                "dims": {name: list(r) for name, r in self.dims.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Profile:
        shapes = {name: (tuple(s["min"]), tuple(s["opt"]), tuple(s["max"])) for name, s in data["inputs"].items()}
        return cls(shapes, {name: tuple(r) for name, r in data.get("dims", {}).items()})

    def contains(self, shapes: dict[str, tuple[int, ...]]) -> bool:
        """True if every input in ``shapes`` lies within this profile's min..max."""
        for name, shape in shapes.items():
            if name not in self.shapes:
                continue  # a fixed-shape input the profile need not mention
            low, _, high = self.shapes[name]
            if len(shape) != len(low) or any(not lo <= s <= hi for s, lo, hi in zip(shape, low, high)):
                return False
        return True

    def span(self) -> int:
        """How much this profile covers (smaller is tighter), to prefer the closest bucket."""
        return sum(h - lo for low, _, high in self.shapes.values() for lo, h in zip(low, high))


def pick(profiles: list[Profile], shapes: dict[str, tuple[int, ...]]) -> int | None:
    """Index of the tightest profile containing ``shapes``, or None."""
    fitting = [i for i, p in enumerate(profiles) if p.contains(shapes)]
    return min(fitting, key=lambda i: profiles[i].span()) if fitting else None


def dynamic(network_inputs: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The inputs with at least one dynamic (-1) axis."""
    return {name: shape for name, shape in network_inputs.items() if any(s < 0 for s in shape)}


# -- from the manifest's dims ---------------------------------------------------------------------


def auto_profiles(network_inputs: dict[str, tuple[int, ...]], model) -> list[Profile]:
    """One profile per combination of the ranges of the dims the network's dynamic axes use.

    ``model`` is the manifest's model block (``inputs`` with named shapes, ``dims``).
    """
    axes, problems = _dim_axes(network_inputs, model)
    if problems:
        raise ProfileError("dynamic inputs without a profile: " + "; ".join(problems),
                           hint="declare each dynamic axis in model.inputs with a dim in model.dims, "
                                "or give explicit options: {tensorrt.plan: {profiles: [...]}}")
    names = list(dict.fromkeys(d for per_input in axes.values() for d in per_input.values() if isinstance(d, str)))
    profiles = []
    for combo in itertools.product(*(model.dims[name].ranges() for name in names)):
        chosen = dict(zip(names, combo))
        profiles.append(Profile({inp: _triple(shape, axes[inp], chosen) for inp, shape in network_inputs.items()
                                 if inp in axes}, chosen))
    return profiles


def _dim_axes(network_inputs, model) -> tuple[dict[str, dict[int, str | int]], list[str]]:
    """For each dynamic input: axis -> dim name (or fixed size from the manifest); problems."""
    declared = {spec.name: list(spec.shape) for spec in model.inputs}
    axes, problems = {}, []
    for name, shape in dynamic(network_inputs).items():
        manifest_shape = declared.get(name)
        if manifest_shape is None:
            problems.append(f"input '{name}' {_show(shape)} is dynamic, and the manifest declares no input "
                            f"'{name}' (it declares: {', '.join(declared) or 'none'})")
            continue
        if len(manifest_shape) != len(shape):
            problems.append(f"input '{name}' has {len(shape)} axes in the graph, {len(manifest_shape)} in the manifest")
            continue
        axes[name] = {}
        for axis, size in enumerate(shape):
            value = manifest_shape[axis]
            if size >= 0:
                continue
            if isinstance(value, str) and value not in model.dims:
                problems.append(f"input '{name}' axis {axis} uses dim '{value}', which model.dims does not declare")
            axes[name][axis] = value
    return axes, problems


def _triple(shape: tuple[int, ...], axes: dict[int, str | int], chosen: dict[str, tuple[int, int, int]]) -> Triple:
    low, mid, high = list(shape), list(shape), list(shape)
    for axis, value in axes.items():
        low[axis], mid[axis], high[axis] = chosen[value] if isinstance(value, str) else (value, value, value)
    return tuple(low), tuple(mid), tuple(high)


def _show(shape) -> str:
    return "[" + ", ".join("?" if s < 0 else str(s) for s in shape) + "]"


# -- given explicitly -----------------------------------------------------------------------------


def explicit_profiles(network_inputs: dict[str, tuple[int, ...]], given: list[dict], model) -> list[Profile]:
    """Check the ``profiles`` option against the network and the manifest's dims; every problem at once."""
    problems = []
    for index, profile in enumerate(given):
        problems += [f"profile {index}: {p}" for p in _check_profile(network_inputs, profile, model)]
    if problems:
        raise ProfileError("optimization profiles do not fit: " + "; ".join(problems),
                           hint="every dynamic input needs min/opt/max in each profile, inside the manifest's dims")
    return [Profile({name: (tuple(s.min), tuple(s.opt), tuple(s.max)) for name, s in profile.items()})
            for profile in given]


def _check_profile(network_inputs, profile: dict, model) -> list[str]:
    problems = [f"names '{name}', which is not a network input (inputs: {', '.join(network_inputs)})"
                for name in profile if name not in network_inputs]
    problems += [f"has no shapes for dynamic input '{name}' {_show(shape)}"
                 for name, shape in dynamic(network_inputs).items() if name not in profile]
    declared = {spec.name: list(spec.shape) for spec in model.inputs}
    for name, shapes in profile.items():
        if name in network_inputs:
            problems += _check_input(name, network_inputs[name], shapes, declared.get(name), model.dims)
    return problems


def _check_input(name: str, shape, shapes, manifest_shape, dims) -> list[str]:
    if len(shapes.min) != len(shape):
        return [f"input '{name}' has {len(shape)} axes, the profile gives {len(shapes.min)}"]
    problems = []
    for axis, size in enumerate(shape):
        low, high = shapes.min[axis], shapes.max[axis]
        allowed = _allowed(size, manifest_shape[axis] if manifest_shape and len(manifest_shape) == len(shape) else None,
                           dims)
        if allowed is not None and not allowed[0] <= low <= high <= allowed[1]:
            what = f"dim '{allowed[2]}'" if allowed[2] else "its fixed size"
            problems.append(f"input '{name}' axis {axis}: {low}..{high} is outside {what} "
                            f"({allowed[0]}..{allowed[1]})")
    return problems


def _allowed(size: int, declared, dims) -> tuple[int, int, str | None] | None:
    """The (low, high, dim name) an axis may take: fixed in the graph, fixed or a dim in the manifest."""
    if size >= 0:
        return size, size, None
    if isinstance(declared, int):
        return declared, declared, None
    if isinstance(declared, str) and declared in dims:
        ranges = dims[declared].ranges()
        return min(r[0] for r in ranges), max(r[2] for r in ranges), declared
    return None
