"""The builtin commands. Heavy modules are imported inside commands so ``--help`` stays fast."""

from __future__ import annotations

import json
from pathlib import Path

import click

MANIFEST = click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))


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


def open_project(ctx: click.Context, manifest: Path):
    from .. import plugins
    from ..project import Project

    obj = ctx.find_root().obj
    return Project(manifest, plugins.PluginConfig.from_options(obj["plugin"]),
                   out_dir=obj["out"], cache_dir=obj["cache_dir"])


def load_plugins(ctx: click.Context):
    from .. import plugins

    pm = plugins.load(plugins.PluginConfig.from_options(ctx.find_root().obj["plugin"]))
    return pm, plugins.Specs.collect(pm)


@cli.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Build only this target (repeatable).")
@click.option("-j", "--jobs", default=None, type=click.IntRange(1, 256),
              help="Independent nodes to run at once [default: 1; ray: as many as the cluster takes].")
@click.option("-k", "--keep-going", is_flag=True,
              help="After a failure, build everything that does not depend on it (and list what was skipped).")
@click.option("--locked", is_flag=True, help="Fail, with a diff, if the lockfile would change (use in CI).")
@click.option("--frozen", is_flag=True,
              help="Build from the lockfile as is: reuse its cached outputs, never rewrite it.")
@click.option("--executor", default=None, help="Executor plugin to run the DAG [default: buildsys.toml's, else local].")
@click.option("--address", default=None, help="Cluster address for the executor (ray: HOST:PORT or ray://HOST:PORT).")
@click.option("--store", default=None, metavar="URL", envvar="BUILDSYS_STORE",
              help="Shared content-addressed store every node reaches: a shared path or an fsspec URL "
                   "(s3://...); env BUILDSYS_STORE.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary of every node on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Only report failures.")
@click.pass_context
def build(ctx, manifest, targets, jobs, keep_going, locked, frozen, executor, address, store, as_json, quiet):
    """Build MANIFEST's targets into <out>/<name>/<version>/<target>/ and write MANIFEST's lock.

    Each stage runs in its own worker process; outputs go through the content-addressed cache,
    so a rebuild of unchanged inputs runs nothing. Exit codes: 0 ok, 1 a node failed, 2 bad
    manifest, 3 a target cannot be planned, 4 lockfile would change.
    """
    from ..build import BuildOptions
    from ..build import build as run_build
    from ..errors import BuildFailed
    from .reporter import TerminalReporter

    if locked and frozen:
        raise click.UsageError("--locked and --frozen are exclusive")
    project = open_project(ctx, manifest)
    project.pm.register(TerminalReporter(quiet=quiet), name="terminal-reporter")
    options = BuildOptions(list(targets) or None, jobs, keep_going, locked, frozen, executor,
                           str(Path(store).resolve()) if store and "://" not in store else store,
                           {"address": address} if address else {})
    try:
        result = run_build(project, options)
    except BuildFailed as exc:
        if as_json:
            click.echo(json.dumps(_summary(exc.result), indent=1))
        raise
    if as_json:
        click.echo(json.dumps(_summary(result), indent=1))
    elif not quiet:
        for target, directory in sorted(result.directories.items()):
            click.echo(f"{target:>16}  {_relative(directory)}", err=True)


def _summary(result) -> dict:
    return {"nodes": {n: {"status": o.status, "seconds": round(o.seconds, 3), "error": o.error}
                      for n, o in result.outcomes.items()},
            "targets": {t: str(d) for t, d in result.directories.items()},
            "lock_changed": result.lock_changed}


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@cli.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Show only this target's nodes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
              show_default=True)
@click.option("--executor", default=None, help="Plan for this executor's hardware too [default: buildsys.toml's, else local].")
@click.option("--address", default=None, help="Cluster address for the executor (ray: HOST:PORT).")
@click.pass_context
def plan(ctx, manifest, targets, fmt, executor, address):
    """Show the build DAG: per node, cached / will build / refused, and why.

    With ``--executor ray`` (or one set in buildsys.toml), stages that must run on hardware this
    host lacks are planned for the cluster instead of refused. Exits 3 when a target is refused
    (after printing the whole plan), so CI can gate on it.
    """
    from ..build import BuildOptions, executor_for, planned
    from .planview import describe, render

    project = open_project(ctx, manifest)
    _, chosen = executor_for(project, BuildOptions(executor=executor,
                                                   executor_options={"address": address} if address else {}))
    view = describe(project, list(targets) or None, planned(project, chosen))
    click.echo(render(view, fmt))
    if view["refused"]:
        from . import ExitCode

        ctx.exit(ExitCode.PLAN_REFUSED)


@cli.command()
@MANIFEST
@click.pass_context
def verify(ctx, manifest):
    """Re-hash every artifact and cache entry of MANIFEST against its lockfile.

    Exit 0 when all match; 5 with every mismatching file listed otherwise.
    """
    from ..verify import verify as run_verify

    project = open_project(ctx, manifest)
    checked = run_verify(project)
    click.echo(f"verified {checked} file(s): all match the lockfile")


@cli.command()
@click.argument("manifests", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
@click.pass_context
def gc(ctx, manifests, dry_run):
    """Remove cache entries no lockfile or artifact references.

    Entries referenced by the lockfiles of MANIFESTS and by every artifact.json under the
    artifact root are kept; blobs they do not use and dead builds' temp folders are removed.
    """
    from ..verify import collect_garbage

    removed = collect_garbage(ctx.find_root().obj, list(manifests), dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {removed['entries']} entries, {removed['blobs']} blobs "
               f"({removed['bytes'] / 1e6:.1f} MB), {removed['tmp']} stale temp folders")


@cli.command()
def schema():
    """Print the manifest JSON Schema (point your editor's YAML plugin at it)."""
    from ..manifest import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@cli.command()
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


@cli.command(name="plugins")
@click.pass_context
def plugins_command(ctx):
    """List plugins, stages (usable on this host or not, and why), kinds, registries, executors."""
    from .planview import plugin_table

    pm, specs = load_plugins(ctx)
    click.echo(plugin_table(pm, specs))
    if specs.broken:
        from ..errors import PluginError

        names = ", ".join(sorted(specs.broken))
        raise PluginError(f"{len(specs.broken)} installed plugin(s) could not be loaded: {names}",
                          hint="see BROKEN above; fix or upgrade them, or block them with -p no:NAME")


from .registry_commands import exists, list_command, publish, pull  # noqa: E402
from .scaffold import new_plugin  # noqa: E402

cli.add_command(exists)
cli.add_command(publish)
cli.add_command(pull)
cli.add_command(list_command)
cli.add_command(new_plugin)
from .inspect import inspect  # noqa: E402

cli.add_command(inspect)
from .bench_commands import bench, report  # noqa: E402

cli.add_command(bench); cli.add_command(report)  # noqa: E702
