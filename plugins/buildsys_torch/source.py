"""The torch model source: resolve ``model.entrypoint``, build the module, load weights.

``entrypoint`` is ``path/to/file.py:function`` (relative to the manifest) or
``package.module:function``; the function returns an ``nn.Module``. ``weights`` (optional) is a
safetensors file or a state dict readable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

from buildsys import BuildsysError, resolve_entrypoint, user_frame



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
