"""A plugin declaring a contract range that includes this buildsys's."""

from buildsys import hookimpl

BUILDSYS_CONTRACT = ">=1.0,<2"


@hookimpl
def buildsys_tool_versions():
    return {"current": "1.0"}
