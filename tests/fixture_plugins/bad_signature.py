"""Implements a real hook with an argument its spec does not declare (``result``, not ``outcome``)."""

from buildsys import hookimpl


@hookimpl
def buildsys_stage_finished(node, result):
    pass
