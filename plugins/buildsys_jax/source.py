"""The jax model source: the entrypoint returns ``(apply, params)``; a weights file overrides params.

``apply(params, *inputs)`` is a pure function (a Flax module's ``apply`` with its ``variables``,
or plain JAX with a pytree of arrays). A bare function ``f(*inputs)`` is a model without
parameters. ``model.weights`` (optional: .npz, .safetensors, or .msgpack written by
``flax.serialization``) replaces the params leaf by leaf, each keyed by its path in the pytree
(``layers/0/w``); a missing, unexpected or misshapen leaf is an error listing them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from buildsys import BackendUnavailable, BuildsysError, resolve_entrypoint, user_frame

EXPECTED = ("expected (apply, params): a function apply(params, *inputs) and its parameter pytree, "
            "e.g. (model.apply, variables) for Flax, or a bare function f(*inputs)")


@dataclass
class JaxModel:
    """A pure function and the parameters it is applied with."""

    apply: Callable[..., Any]
    params: Any
    entrypoint: str

    def __call__(self, *inputs):
        return self.apply(self.params, *inputs)

    def bound(self) -> Callable[..., Any]:
        """``f(*inputs)`` with the params closed over, so an export embeds them as constants."""
        apply, params = self.apply, self.params
        return lambda *inputs: apply(params, *inputs)


def load_model(model, root: Path) -> JaxModel:
    """Build the manifest's model: call the entrypoint, check what it returned, load weights."""
    build = resolve_entrypoint(model.entrypoint, root)
    try:
        produced = build()
    except Exception as exc:
        raise BuildsysError(f"entrypoint '{model.entrypoint}' raised {type(exc).__name__}: {exc}",
                            where=user_frame(exc, root)) from None
    loaded = as_model(produced, model.entrypoint)
    check_params(loaded.params, model.entrypoint)
    if model.weights:
        loaded.params = apply_weights(loaded.params, read_weights(model.weights_path(root)))
    return loaded


def as_model(produced: Any, entrypoint: str) -> JaxModel:
    """The ``JaxModel`` an entrypoint's return value describes, or an error saying what is wrong."""
    if callable(produced) and not isinstance(produced, (tuple, list, dict)):
        return JaxModel(lambda params, *inputs: produced(*inputs), {}, entrypoint)
    if isinstance(produced, (tuple, list)) and len(produced) == 2:
        first, second = produced
        if callable(first) and not callable(second):
            return JaxModel(first, second, entrypoint)
        if callable(second) and not callable(first):
            raise BuildsysError(f"entrypoint '{entrypoint}' returned (params, function): the function comes first",
                                hint="return (apply, params)")
    raise BuildsysError(f"entrypoint '{entrypoint}' returned {_describe(produced)}; {EXPECTED}")


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} ({', '.join(type(v).__name__ for v in value[:4])})"
    if isinstance(value, dict):
        return "a dict (parameters alone?)"
    return f"a {type(value).__name__}"


def path_key(path) -> str:
    """``layers/0/w`` for a pytree key path (dict keys, sequence indices, attribute names)."""
    parts = []
    for entry in path:
        value = next((getattr(entry, a) for a in ("key", "idx", "name") if hasattr(entry, a)), entry)
        parts.append(str(value))
    return "/".join(parts)


def check_params(params: Any, entrypoint: str) -> None:
    """Every leaf of the params pytree must be an array (or a number)."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    wrong = [f"'{path_key(p)}' is a {type(v).__name__}" for p, v in leaves
             if not (hasattr(v, "shape") and hasattr(v, "dtype")) and not isinstance(v, (int, float, complex))]
    if wrong:
        raise BuildsysError(f"entrypoint '{entrypoint}' returned params whose leaves are not arrays: "
                            + "; ".join(wrong[:5]), hint="params must be a pytree (dicts, lists, tuples) of arrays")


def read_weights(path: Path) -> dict[str, Any]:
    """``{key path: numpy array}`` from an .npz, .safetensors or flax .msgpack file."""
    import numpy as np

    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:  # no pickles: a weights file runs no code
                return {key: data[key] for key in data.files}
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return load_file(str(path))
        if path.suffix == ".msgpack":
            return _read_msgpack(path)
    except BuildsysError:
        raise
    except Exception as exc:
        raise BuildsysError(f"cannot read weights {path.name}: {type(exc).__name__}: {exc}") from None
    raise BuildsysError(f"weights {path.name}: unsupported format '{path.suffix}'",
                        hint="save the params as .npz (numpy.savez), .safetensors or .msgpack (flax.serialization)")


def _read_msgpack(path: Path) -> dict[str, Any]:
    try:
        from flax.serialization import msgpack_restore
    except ImportError:
        raise BackendUnavailable(f"weights {path.name} are flax msgpack, which is read with flax",
                                 hint="pip install flax, or save the params as .npz") from None
    flat: dict[str, Any] = {}

    def walk(value, prefix: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{prefix}/{key}" if prefix else str(key))
        else:
            flat[prefix] = value

    walk(msgpack_restore(path.read_bytes()), "")
    return flat


def apply_weights(params: Any, arrays: dict[str, Any]) -> Any:
    """``params`` with every leaf replaced by the array of the same key path, checked first."""
    import jax
    import numpy as np

    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = [path_key(p) for p, _ in leaves]
    problems = _mismatches(dict(zip(keys, (v for _, v in leaves))), arrays)
    if problems:
        raise BuildsysError("the weights do not match the params pytree (" + " | ".join(problems) + ")",
                            hint="save them from the same params structure, keyed by path (layers/0/w), "
                                 "e.g. np.savez(path, **flat)")
    return jax.tree_util.tree_unflatten(treedef, [np.asarray(arrays[k]) for k in keys])


def _mismatches(expected: dict[str, Any], arrays: dict[str, Any]) -> list[str]:
    import numpy as np

    missing = [k for k in expected if k not in arrays]
    unexpected = sorted(k for k in arrays if k not in expected)
    wrong = [f"{k}: file {arrays[k].dtype}{list(arrays[k].shape)} != params "
             f"{np.asarray(v).dtype}{list(np.shape(v))}" for k, v in expected.items()
             if k in arrays and (np.shape(arrays[k]) != np.shape(v) or arrays[k].dtype != np.asarray(v).dtype)]
    return ([f"missing {len(missing)}: {', '.join(missing[:5])}"] if missing else []) + \
           ([f"unexpected {len(unexpected)}: {', '.join(unexpected[:5])}"] if unexpected else []) + \
           ([f"mismatched: {'; '.join(wrong[:5])}"] if wrong else [])
