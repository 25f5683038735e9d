"""What every command module shares: exit codes, the MANIFEST argument, opening a project and
loading plugins. Command modules import this module and nothing else of ``buildsys.cli``."""

from __future__ import annotations

import enum
from pathlib import Path

import click


class ExitCode(enum.IntEnum):
    """The exit status of ``buildsys`` (documented in ``buildsys.cli``)."""

    OK = 0
    BUILD_FAILED = 1
    BAD_INPUT = 2
    PLAN_REFUSED = 3
    LOCK_MISMATCH = 4
    VERIFY_FAILED = 5
    REGISTRY = 6
    BACKEND_UNAVAILABLE = 7
    PLUGIN = 8
    CACHE = 9
    NOT_BUILT = 10
    INTERNAL = 70
    INTERRUPTED = 130


MANIFEST = click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
JSON = click.option("--json", "as_json", is_flag=True,
                    help="Print one JSON envelope on stdout: {command, ok, exit_code, result, error} (errors too).")


def emit(ctx: click.Context, result) -> None:
    """Print ``result`` in the JSON envelope (``buildsys.envelope``)."""
    from ..envelope import dumps, json_envelope

    click.echo(dumps(json_envelope(ctx.command.name, result)))


def open_project(ctx: click.Context, manifest: Path, **settings):
    """The project of ``manifest`` with the global options (-p, --out, --cache-dir), configured
    for this command (``buildsys_configure``; ``settings`` such as ``progress=True, quiet=...``)."""
    from .. import plugins
    from ..project import Project

    obj = ctx.find_root().obj
    project = Project(manifest, plugins.PluginConfig.from_options(obj["plugin"]),
                      out_dir=obj["out"], cache_dir=obj["cache_dir"])
    configure(ctx, project.pm, settings)
    return project


def load_plugins(ctx: click.Context, **settings):
    """``(plugin manager, catalog)`` for a command that needs plugins but no manifest."""
    from .. import plugins

    pm = plugins.load(plugins.PluginConfig.from_options(ctx.find_root().obj["plugin"]))
    configure(ctx, pm, settings)
    return pm, plugins.Catalog.collect(pm)


def configure(ctx: click.Context, pm, settings: dict) -> None:
    """Let plugins set up for this command (the builtin terminal reporter registers here)."""
    name = ctx.command.name if ctx.command is not None else ""
    pm.hook.buildsys_configure(pluginmanager=pm, settings={"command": name, "progress": False, "quiet": False,
                                                           "json": False, **settings})


def relative(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it (shorter to read)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_GLOBAL_OPTIONS_WITH_VALUES = ("-p", "--out", "--cache-dir")


def command_of(argv: list[str]) -> str | None:
    """The subcommand in ``argv``, past the global options (``-p NAME build ...``)."""
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_OPTIONS_WITH_VALUES:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None
