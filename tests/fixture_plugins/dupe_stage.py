"""Registers a stage name the text plugin already owns."""

from buildsys import StageSpec, hookimpl


@hookimpl
def buildsys_register_stages():
    return [StageSpec("text.normalize", consumes=("text.source",), produces="text", run=lambda *a: None)]
