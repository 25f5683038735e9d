"""The Ray executor plugin (work in progress: registers nothing yet)."""
