"""``publish``, ``pull``, ``list`` and ``exists``: move built targets to and from registries."""

from __future__ import annotations

from pathlib import Path

import click

from .common import MANIFEST, load_plugins, open_project

URLS = ("file:///abs/path, file:rel/path, mlflow+http://host:port, mlflow+https://host/path, "
        "oci://host:port/repository")

RETRIES = click.option(
    "--retries", type=click.IntRange(0, 20), default=None, metavar="N",
    help="Retries of a transient failure (connection refused or reset, 429, 5xx) with bounded "
         "exponential backoff; default 3, or BUILDSYS_REGISTRY_RETRIES.")
VERBOSE = click.option("-v", "--verbose", is_flag=True, help="Report each file as it is transferred.")


def _open(catalog, url: str, retries: int | None):
    from ..registry import open_registry
    from ..transfer import Retry

    retry = Retry(attempts=retries + 1) if retries is not None else Retry.from_env()
    return open_registry(catalog, url, retry=retry)


def _progress(verbose: bool, verb: str):
    if not verbose:
        return None
    return lambda name, size: click.echo(f"  {verb} {name} ({size / 1e6:.1f} MB)", err=True)


@click.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Publish only this target (repeatable).")
@click.option("--to", "url", required=True, help=f"Registry URL: {URLS}.")
@click.option("--dry-run", is_flag=True,
              help="Check everything (files, registry reachable, immutability) and write nothing.")
@click.option("--alias", metavar="NAME",
              help="Also point the movable name NAME-<target> at each published target "
                   "(an MLflow model alias, an extra OCI tag).")
@RETRIES
@VERBOSE
@click.pass_context
def publish(ctx, manifest, targets, url, dry_run, alias, retries, verbose):
    """Publish MANIFEST's built targets (files + artifact.json) to the registry at URL.

    Every file is re-hashed first: an artifact edited after the build is refused. Files go
    before the metadata that makes a version visible, so an interrupted publish leaves no
    version that looks complete. Versions are immutable: the same digest again is a no-op; a
    different one is refused (exit 6). Credentials come from the environment (see each
    registry's documentation), never from the URL.
    """
    from ..artifacts import target_dir

    project = open_project(ctx, manifest)
    registry = _open(project.specs, url, retries)
    names = list(targets) or list(project.manifest.targets)
    for name in names:
        if name not in project.manifest.targets:
            raise click.BadParameter(f"no target '{name}' in {manifest}", param_hint="--target")
    extra = {"alias": alias} if alias else {}
    for name in names:
        directory = target_dir(project.out_root, project.manifest.name, project.manifest.version, name)
        result = registry.publish(directory, dry_run=dry_run, progress=_progress(verbose, "sent"), **extra)
        if result.dry_run:
            state = "would publish" if result.created else "unchanged (already published)"
        else:
            state = "published" if result.created else "unchanged (already published)"
        click.echo(f"{result.ref}  {state}  {result.location}")


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("target", required=False)
@click.option("--from", "url", required=True, help="Registry URL to pull from.")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to place the target directory in.")
@click.option("--hardware", "hardware", multiple=True, metavar="HW",
              help="Without TARGET: select for a machine offering HW (a tag or product name: l4, "
                   "sm89, cpu-x86_64-avx2; repeatable) instead of this one.")
@click.option("--dry-run", is_flag=True, help="Resolve (and select) what would be pulled; write nothing.")
@RETRIES
@VERBOSE
@click.pass_context
def pull(ctx, name, version, target, url, dest, hardware, dry_run, retries, verbose):
    """Fetch NAME VERSION TARGET from a registry into DEST/TARGET, verifying every checksum.

    Without TARGET, pick the published target of NAME VERSION whose hardware tag runs on this
    machine: a CUDA engine for one of its GPUs' compute capabilities, else a CPU build for its
    arch and ISA, else a portable one (or for the machine --hardware describes). Nothing is
    written to DEST unless every file matches its checksum.
    """
    from ..registry import ArtifactRef

    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        _check_name(value, what)
    pm, catalog = load_plugins(ctx)
    registry = _open(catalog, url, retries)
    ref = ArtifactRef(name, version, target) if target else _select(pm, registry, name, version, hardware)
    if dry_run:
        if not registry.exists(ref):
            from ..errors import RegistryError

            raise RegistryError(f"{ref} is not in {url}")
        click.echo(f"would pull {ref} -> {Path(dest) / ref.target}")
        return
    path = registry.pull(ref, dest, progress=_progress(verbose, "received"))
    click.echo(f"pulled {ref} -> {path} (checksums verified)")


def _check_name(value: str | None, what: str) -> None:
    from ..fsutil import check_safe_name

    if value is None:
        return
    try:
        check_safe_name(value, what)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what.upper()) from None


def _select(pm, registry, name: str, version: str, hardware: tuple[str, ...]):
    from ..errors import RegistryError
    from ..hardware import parse
    from ..project import probe_host
    from ..registry import select_for_host

    offered = [parse(h) for h in hardware] if hardware else probe_host(pm).tags()
    refs = [r for r in registry.list(name) if r.name == name and r.version == version]
    if not refs:
        versions = sorted({r.version for r in registry.list(name) if r.name == name})
        raise RegistryError(f"{name}/{version} is not published there",
                            hint=f"published versions of '{name}': {', '.join(versions) or 'none'}")
    chosen = select_for_host(refs, offered)
    click.echo(f"selected target '{chosen.target}' ({chosen.hardware}) for "
               f"{', '.join(str(t) for t in offered)}", err=True)
    return chosen


@click.command(name="list")
@click.argument("name", required=False)
@click.option("--from", "url", required=True, help="Registry URL.")
@RETRIES
@click.pass_context
def list_command(ctx, name, url, retries):
    """List what a registry holds (or only NAME): name, version, target, hardware, digest."""
    _check_name(name, "name")
    _, catalog = load_plugins(ctx)
    refs = _open(catalog, url, retries).list(name)
    for ref in refs:
        hardware = ref.hardware or "?"
        click.echo(f"{ref.name:<20} {ref.version:<10} {ref.target:<16} {hardware:<18} {ref.digest[:16]}")
    if not refs:
        click.echo("(empty)", err=True)


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("target")
@click.option("--from", "url", required=True, help="Registry URL.")
@RETRIES
@click.pass_context
def exists(ctx, name, version, target, url, retries):
    """Exit 0 if NAME VERSION TARGET is published (completely) at URL; exit 1 if not.

    A registry that cannot be reached exits 6, so a script can tell "absent" from "unknown".
    """
    from ..registry import ArtifactRef

    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        _check_name(value, what)
    _, catalog = load_plugins(ctx)
    registry = _open(catalog, url, retries)
    ref = ArtifactRef(name, version, target)
    if not registry.exists(ref):
        click.echo(f"{ref} absent", err=True)
        ctx.exit(1)
    click.echo(f"{ref} present")
