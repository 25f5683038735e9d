"""``schema``, ``host`` and ``plugins``: what buildsys and this machine offer."""

from __future__ import annotations

import json

import click

from .common import JSON, emit, load_plugins


@click.command()
@click.pass_context
def schema(ctx):
    """Print the manifest JSON Schema (point your editor's YAML plugin at it).

    It includes every installed stage's options (with descriptions, choices and defaults) under
    targets.*.options, and the target formats the installed plugins build.
    """
    from ..optionschema import manifest_schema

    _, catalog = load_plugins(ctx)
    click.echo(json.dumps(manifest_schema(catalog), indent=2))


@click.command()
@click.argument("stage", required=False)
@JSON
@click.pass_context
def options(ctx, stage, as_json):
    """Describe the options of STAGE (set in a target as options: {STAGE: {...}}); without STAGE,
    list the stages that take options.

    \b
    Example:
      buildsys options onnx.export
      targets: {portable: {format: onnx, options: {onnx.export: {opset: 18}}}}
    """
    from ..optionschema import describe

    _, catalog = load_plugins(ctx)
    if stage is None:
        names = {n: s.description for n, s in sorted(catalog.stages.items()) if s.options is not None}
        if as_json:
            return emit(ctx, names)
        for name, description in names.items():
            click.echo(f"{name:<22} {description}")
        return
    spec = catalog.stage(stage)
    if spec.options is None:
        return emit(ctx, []) if as_json else click.echo(f"stage '{stage}' takes no options")
    entries = describe(stage, spec.options)
    if as_json:
        return emit(ctx, entries)
    click.echo(f"{stage}: {spec.description}  [plugin {catalog.owner('stages', stage)}]")
    for entry in entries:
        default = "required" if entry["required"] else f"default {json.dumps(entry['default'])}"
        click.echo(f"  {entry['name']}: {entry['type']} ({default})")
        if entry["description"]:
            click.echo(f"      {entry['description']}")


@click.command()
@JSON
@click.pass_context
def host(ctx, as_json):
    """Show what this machine offers: CPU arch and ISA, GPUs and compute capability, tags."""
    from ..project import probe_host

    pm, _ = load_plugins(ctx)
    info = probe_host(pm).describe()
    if as_json:
        return emit(ctx, info)
    memory = f", {info['memory_mb'] / 1024:.1f} GiB" if info.get("memory_mb") else ""
    click.echo(f"host      {info['hostname']}\ncpu       {info.get('cpu_model') or info['arch']}: {info['arch']} "
               f"({info['isa'] or 'n/a'}; microarchitecture {info.get('microarch') or 'unknown'}), "
               f"{info.get('cpus') or '?'} cores{memory}")
    for gpu in info["gpus"]:
        click.echo(f"gpu {gpu['index']}     {gpu['name']} sm{gpu['sm']} {gpu['memory_mb']} MiB")
    if not info["gpus"]:
        click.echo("gpus      none")
    click.echo(f"tags      {', '.join(info['tags'])}")
    for key, value in info["facts"].items():
        click.echo(f"{key:<9} {value}")


@click.command(name="plugins")
@JSON
@click.pass_context
def plugins_command(ctx, as_json):
    """List plugins, stages (usable on this host or not, and why), kinds, registries, executors."""
    from .planview import plugin_data, plugin_table

    pm, catalog = load_plugins(ctx)
    data = plugin_data(pm, catalog)
    if not catalog.broken:
        return emit(ctx, data) if as_json else click.echo(plugin_table(pm, catalog))
    if not as_json:
        click.echo(plugin_table(pm, catalog))
    from ..errors import PluginError

    names = ", ".join(sorted(catalog.broken))
    error = PluginError(f"{len(catalog.broken)} installed plugin(s) could not be loaded: {names}",
                        hint="see BROKEN above; fix or upgrade them, or block them with -p no:NAME")
    error.json_result = data
    raise error
