"""The ``buildsys`` command group and the one list of its commands (``COMMANDS``).

Each command lives in a module of its own family (``build_commands``, ``info_commands``,
``registry_commands`` ...) that imports only ``buildsys.cli.common``; this module imports them
and registers every one here, so there is no import circle. Plugins add commands through
``buildsys_add_commands`` when the group lists or looks up its commands.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import (bench_commands, build_commands, debug, info_commands, inspect, provenance_commands, registry_commands,
               scaffold)


class PluginGroup(click.Group):
    """A group that also offers the commands plugins add through ``buildsys_add_commands``."""

    _plugins_loaded = False

    def _load_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from .. import plugins

        options = (ctx.params or {}).get("plugin") or ()
        pm = plugins.load(plugins.PluginConfig.from_options(tuple(options)))
        builtin = set(self.commands)
        for impl in pm.hook.buildsys_add_commands.get_hookimpls():
            before = set(self.commands)
            impl.function(cli=self)
            clash = (set(self.commands) - before) & builtin
            if clash:
                from ..errors import PluginError

                raise PluginError(f"command(s) {', '.join(sorted(clash))} already exist",
                                  where=f"plugin '{impl.plugin_name}'")

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands(ctx)
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx):
        self._load_plugin_commands(ctx)
        return super().list_commands(ctx)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "plugin", multiple=True, metavar="NAME", is_eager=True,  # before --help
              help="Block an installed plugin with 'no:NAME', or load a plugin module by import name. "
                   "BUILDSYS_PLUGINS=a,b loads only those entry points.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), envvar="BUILDSYS_OUT",
              help="Artifact root (default ./artifacts; env BUILDSYS_OUT).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), envvar="BUILDSYS_CACHE_DIR",
              help="Content-addressed store (default <out>/.cache; env BUILDSYS_CACHE_DIR).")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of an error.")
@click.version_option(package_name="buildsys")
@click.pass_context
def cli(ctx, plugin, out, cache_dir, traceback):
    """Build deployable, hardware-tagged model artifacts from a declarative manifest.

    \b
    A typical session:
      buildsys plan manifests/hello.yaml        what would be built, what is cached
      buildsys build manifests/hello.yaml -j 2  build every target (a rerun is free)
      buildsys verify manifests/hello.yaml      re-hash artifacts against the lockfile
      buildsys publish manifests/hello.yaml --to file:registry
    """
    ctx.obj = {"plugin": tuple(plugin), "out": out, "cache_dir": cache_dir}


COMMANDS = (
    build_commands.build, build_commands.plan, build_commands.verify, build_commands.gc,
    inspect.inspect, debug.debug, bench_commands.bench, bench_commands.report,
    registry_commands.publish, registry_commands.pull, registry_commands.list_command, registry_commands.exists,
    provenance_commands.sign, provenance_commands.keygen,
    info_commands.schema, info_commands.options, info_commands.host, info_commands.plugins_command, scaffold.new_plugin,
)

for _command in COMMANDS:
    cli.add_command(_command)
