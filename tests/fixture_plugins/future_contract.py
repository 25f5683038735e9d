"""A plugin built for a plugin contract this buildsys does not implement."""

from buildsys import hookimpl

BUILDSYS_CONTRACT = ">=2,<3"


@hookimpl
def buildsys_tool_versions():
    return {"future": "2.0"}
