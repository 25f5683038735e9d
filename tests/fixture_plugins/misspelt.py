"""Implements a hook that does not exist (register_stage without the s)."""

from buildsys import hookimpl


@hookimpl
def buildsys_register_stage():
    return []
