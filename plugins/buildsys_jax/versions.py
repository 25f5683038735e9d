"""The JAX tool chain, read from package metadata (never by importing jax).

``jax`` and ``jaxlib`` are separate distributions: jax.export's serialized form depends on
jax (and is versioned by its calling convention), a serialized XLA executable on jaxlib and
the PJRT plugin that compiled it (``jax-cuda12-plugin`` / ``jax-cuda13-plugin`` on CUDA).
"""

from __future__ import annotations

from buildsys import Requirement

JAX_INSTALL = "pip install 'buildsys[jax]'  (CPU; for NVIDIA GPUs: pip install 'jax[cuda13]')"
JAX = Requirement("jax", ">=0.10", JAX_INSTALL)
JAXLIB = Requirement("jaxlib", ">=0.10", JAX_INSTALL)
REQUIRES = (JAX, JAXLIB)
CUDA_PLUGINS = ("jax-cuda13-plugin", "jax-cuda12-plugin")


def version_of(distribution: str) -> str | None:
    """The installed version of ``distribution`` (None if absent), read once per process by the core."""
    return Requirement(distribution).installed_version()


def tool_versions() -> dict[str, str]:
    """jax, jaxlib and any CUDA plugin installed, for the lockfile; absent ones left out."""
    names = ("jax", "jaxlib", *CUDA_PLUGINS)
    return {name: v for name in names if (v := version_of(name)) is not None}


def minor(version: str) -> str:
    """``0.10.2`` -> ``0.10``: the part of a version a file name carries."""
    return ".".join(version.split(".")[:2])
