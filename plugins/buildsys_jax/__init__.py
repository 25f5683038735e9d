"""The first-party JAX backend (work in progress: registers nothing yet)."""
