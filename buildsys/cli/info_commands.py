"""``schema``, ``host`` and ``plugins``: what buildsys and this machine offer."""

from __future__ import annotations

import json

import click

from .common import load_plugins


@click.command()
def schema():
    """Print the manifest JSON Schema (point your editor's YAML plugin at it)."""
    from ..manifest import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def host(ctx, as_json):
    """Show what this machine offers: CPU arch and ISA, GPUs and compute capability, tags."""
    from ..project import probe_host

    pm, _ = load_plugins(ctx)
    info = probe_host(pm).describe()
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"host      {info['hostname']}\ncpu       {info['arch']} ({info['isa'] or 'n/a'})")
    for gpu in info["gpus"]:
        click.echo(f"gpu {gpu['index']}     {gpu['name']} sm{gpu['sm']} {gpu['memory_mb']} MiB")
    if not info["gpus"]:
        click.echo("gpus      none")
    click.echo(f"tags      {', '.join(info['tags'])}")
    for key, value in info["facts"].items():
        click.echo(f"{key:<9} {value}")


@click.command(name="plugins")
@click.pass_context
def plugins_command(ctx):
    """List plugins, stages (usable on this host or not, and why), kinds, registries, executors."""
    from .planview import plugin_table

    pm, catalog = load_plugins(ctx)
    click.echo(plugin_table(pm, catalog))
    if catalog.broken:
        from ..errors import PluginError

        names = ", ".join(sorted(catalog.broken))
        raise PluginError(f"{len(catalog.broken)} installed plugin(s) could not be loaded: {names}",
                          hint="see BROKEN above; fix or upgrade them, or block them with -p no:NAME")
