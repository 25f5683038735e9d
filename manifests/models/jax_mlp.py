"""A small pure-JAX MLP (no Flax): ``build()`` returns ``(apply, params)``.

The params pytree is initialised from seed 0; the manifest's weights file, ``jax_mlp.npz``
(seed 1, keyed by pytree path: ``layers/0/w``), replaces every leaf, so loading it is visible in
the outputs. Regenerate it with ``python manifests/models/jax_mlp.py`` (deterministic).
Matrix products ask for HIGHEST precision: fp32 on every platform, so the CPU reference and a
GPU build agree to fp32 tolerances (the default lets a GPU use TF32).
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

FEATURES, HIDDEN, CLASSES = 32, 128, 10
WEIGHTS = Path(__file__).with_name("jax_mlp.npz")


def dense(rng, n_in: int, n_out: int) -> dict:
    return {"w": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
            "b": (0.1 * rng.standard_normal(n_out)).astype(np.float32)}


def init_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"layers": [dense(rng, FEATURES, HIDDEN), dense(rng, HIDDEN, HIDDEN)],
            "norm": {"scale": (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32),
                     "bias": (0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)},
            "head": dense(rng, HIDDEN, CLASSES)}


def linear(x, layer):
    return jnp.dot(x, layer["w"], precision=jax.lax.Precision.HIGHEST) + layer["b"]


def apply(params, features):
    """features [batch, 32] -> {"embedding": [batch, 128], "logits": [batch, 10]}."""
    h = features
    for layer in params["layers"]:
        h = jax.nn.gelu(linear(h, layer))
    mean = h.mean(-1, keepdims=True)
    h = (h - mean) * jax.lax.rsqrt(h.var(-1, keepdims=True) + 1e-5)
    h = h * params["norm"]["scale"] + params["norm"]["bias"]
    return {"embedding": h, "logits": linear(h, params["head"])}


def build():
    return apply, init_params(0)


def flat(params: dict, prefix: str = "") -> dict:
    """{"layers/0/w": array, ...}: the key paths the jax source matches weights by."""
    items = params.items() if isinstance(params, dict) else enumerate(params)
    out = {}
    for key, value in items:
        path = f"{prefix}{key}"
        out.update(flat(value, path + "/") if isinstance(value, (dict, list)) else {path: value})
    return out


if __name__ == "__main__":
    np.savez(WEIGHTS, **flat(init_params(1)))
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size} bytes)")
