"""The torch model source: resolve ``model.entrypoint``, build the module, load weights.

``entrypoint`` is ``path/to/file.py:function`` (relative to the manifest) or
``package.module:function``; the function returns an ``nn.Module``. ``weights`` (optional) is a
safetensors file or a state dict readable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError, StageFailed, resolve_entrypoint, user_frame


def load_module(model, root: Path):
    """Build the ``nn.Module`` the manifest names, with its weights, in eval mode."""
    import torch

    build = resolve_entrypoint(model.entrypoint, root)
    try:
        module = build()
    except Exception as exc:
        raise BuildsysError(f"entrypoint '{model.entrypoint}' raised {type(exc).__name__}: {exc}",
                            where=user_frame(exc, root)) from None
    if not isinstance(module, torch.nn.Module):
        raise BuildsysError(f"entrypoint '{model.entrypoint}' returned {type(module).__name__}, "
                            "expected a torch.nn.Module",
                            hint="return the model instance, e.g. 'return MyNet()'")
    if model.weights:
        load_weights(module, model.weights_path(root))
    return module.eval()


def load_weights(module, path: Path) -> None:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BuildsysError(f"cannot read weights {path.name}: {type(exc).__name__}: {exc}",
                            hint="weights must be safetensors or a state dict saved with torch.save") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    _check_state(module, state, path)
    module.load_state_dict(state, strict=True)


def _check_state(module, state: dict, path: Path) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} != model {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        parts = ([f"missing {len(missing)}: {', '.join(missing[:5])}"] if missing else []) + \
                ([f"unexpected {len(unexpected)}: {', '.join(unexpected[:5])}"] if unexpected else []) + \
                ([f"shape mismatches: {'; '.join(shapes[:5])}"] if shapes else [])
        raise BuildsysError(f"weights {path.name} do not match the module ({' | '.join(parts)})",
                            hint="check that the entrypoint builds the architecture these weights were saved from")


def call_eager(module, sample, model, root: Path):
    """``module(*sample)``; when the model rejects the inputs, one error that names the line in
    the model code and sets the shapes it got beside what the manifest declares."""
    from .flat import call

    try:
        return call(module, [spec.name for spec in model.inputs], sample)
    except Exception as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        raise StageFailed(f"the model rejects its inputs: {type(exc).__name__}: {first[:300]}\n"
                          f"    called with {_shapes(sample, model)}\n"
                          f"    the manifest declares {_declared(model)}",
                          where=user_frame(exc, root),
                          hint="make model.inputs (order, shapes, dtypes) match what forward() expects, "
                               "or fix the line shown") from None


def _shapes(sample, model) -> str:
    names = [spec.name for spec in model.inputs]
    return ", ".join(f"{name}: {_described(value)}" for name, value in zip(names, sample))


def _described(value) -> str:
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None:
        return type(value).__name__
    return f"{str(dtype).removeprefix('torch.')} {list(shape)}"


def _declared(model) -> str:
    dims = {name: f"{d.min}..{d.max}" if d.buckets is None else f"buckets {d.buckets}"
            for name, d in (model.dims or {}).items()}
    inputs = ", ".join(f"{spec.name}: {spec.dtype} [{', '.join(map(str, spec.shape))}]" for spec in model.inputs)
    ranges = ", ".join(f"{name} {span}" for name, span in dims.items())
    return inputs + (f" ({ranges})" if ranges else "")
