"""``publish``, ``pull`` and ``list``: move built targets to and from registries."""

from __future__ import annotations

from pathlib import Path

import click

from .commands import MANIFEST, load_plugins, open_project


@click.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Publish only this target (repeatable).")
@click.option("--to", "url", required=True, help="Registry URL: file:///abs/path, file:rel/path, ...")
@click.pass_context
def publish(ctx, manifest, targets, url):
    """Publish MANIFEST's built targets (files + artifact.json) to the registry at URL.

    Every file is re-hashed first: an artifact edited after the build is refused. Versions are
    immutable: the same digest again is a no-op; a different one is refused (exit 6).
    """
    from ..artifacts import target_dir
    from ..registry import open_registry

    project = open_project(ctx, manifest)
    registry = open_registry(project.specs, url)
    names = list(targets) or list(project.manifest.targets)
    for name in names:
        if name not in project.manifest.targets:
            raise click.BadParameter(f"no target '{name}' in {manifest}", param_hint="--target")
        directory = target_dir(project.out_root, project.manifest.name, project.manifest.version, name)
        result = registry.publish(directory)
        state = "published" if result.created else "unchanged (already published)"
        click.echo(f"{result.ref}  {state}  {result.location}")


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("target")
@click.option("--from", "url", required=True, help="Registry URL to pull from.")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to place the target directory in.")
@click.pass_context
def pull(ctx, name, version, target, url, dest):
    """Fetch NAME VERSION TARGET from a registry into DEST/TARGET, verifying every checksum."""
    from ..fsutil import check_safe_name
    from ..registry import ArtifactRef, open_registry

    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        try:
            check_safe_name(value, what)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=what.upper()) from None
    _, specs = load_plugins(ctx)
    path = open_registry(specs, url).pull(ArtifactRef(name, version, target), dest)
    click.echo(f"pulled {name}/{version}/{target} -> {path} (checksums verified)")


@click.command(name="list")
@click.option("--from", "url", required=True, help="Registry URL.")
@click.pass_context
def list_command(ctx, url):
    """List what a registry holds: name, version, target, digest."""
    from ..registry import open_registry

    _, specs = load_plugins(ctx)
    refs = open_registry(specs, url).list()
    for ref in refs:
        click.echo(f"{ref.name:<20} {ref.version:<10} {ref.target:<16} {ref.digest[:16]}")
    if not refs:
        click.echo("(empty)", err=True)
