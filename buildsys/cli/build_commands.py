"""``build``, ``plan``, ``verify`` and ``gc``: the build and the state it leaves."""

from __future__ import annotations

from pathlib import Path

import click

from .common import JSON, MANIFEST, ExitCode, emit, open_project, relative


@click.command()
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
@click.option("--no-pool", is_flag=True,
              help="Run every stage in a fresh worker process instead of the warm worker pool "
                   "([build] pool = false; env BUILDSYS_POOL=0).")
@JSON
@click.option("-q", "--quiet", is_flag=True, help="Only report failures.")
@click.option("--explain", is_flag=True,
              help="Before building, say on stderr why each node will build (what changed since the lockfile).")
@click.pass_context
def build(ctx, manifest, targets, jobs, keep_going, locked, frozen, executor, address, store, no_pool, as_json,
          quiet, explain):
    """Build MANIFEST's targets into <out>/<name>/<version>/<target>/ and write MANIFEST's lock.

    Stages run in worker processes kept warm between jobs (--no-pool: a fresh one each); a
    crashed or hung stage fails only its node. Outputs go through the content-addressed cache,
    so a rebuild of unchanged inputs runs nothing. Exit codes: 0 ok, 1 a node failed, 2 bad
    manifest (also one only the built graph shows, such as an exclude entry matching no node), 3 a target cannot be planned, 4 lockfile would change.
    """
    from ..builder import BuildOptions
    from ..builder import build as run_build
    from ..errors import BuildFailed

    if locked and frozen:
        raise click.UsageError("--locked and --frozen are exclusive")
    project = open_project(ctx, manifest, progress=True, quiet=quiet, json=as_json)
    options = BuildOptions(list(targets) or None, jobs, keep_going, locked, frozen, executor,
                           str(Path(store).resolve()) if store and "://" not in store else store,
                           {"address": address} if address else {}, pool=False if no_pool else None)
    if explain:
        _explain(project, options)
    try:
        result = run_build(project, options)
    except BuildFailed as exc:
        exc.json_result = _summary(exc.result)  # the error's envelope says what did succeed
        raise
    if as_json:
        emit(ctx, _summary(result))
    elif not quiet:
        for target, directory in sorted(result.directories.items()):
            click.echo(f"{target:>16}  {relative(directory)}", err=True)


def _explain(project, options) -> None:
    from ..builder import executor_for, planned
    from .planview import describe, explanation_lines

    _, chosen = executor_for(project, options)
    lines = explanation_lines(describe(project, options.targets, planned(project, chosen), explain=True))
    click.echo("\n".join(lines) if lines else "nothing to build: every node is cached", err=True)


def _summary(result) -> dict:
    return {"nodes": {n: {"status": o.status, "seconds": round(o.seconds, 3), "error": o.error}
                      for n, o in result.outcomes.items()},
            "targets": {t: str(d) for t, d in result.directories.items()},
            "lock_changed": result.lock_changed}


@click.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Show only this target's nodes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot", "mermaid"]), default="text",
              show_default=True)
@click.option("--executor", default=None, help="Plan for this executor's hardware too [default: buildsys.toml's, else local].")
@click.option("--address", default=None, help="Cluster address for the executor (ray: HOST:PORT).")
@click.option("--explain", is_flag=True,
              help="Under each node that will build, say what changed since the lockfile: an option, a "
                   "tool version, a stage version, a model file, an input, or a missing cache entry.")
@click.pass_context
def plan(ctx, manifest, targets, fmt, executor, address, explain):
    """Show the build DAG: per node, cached / will build / refused, and why.

    With ``--executor ray`` (or one set in buildsys.toml), stages that must run on hardware this
    host lacks are planned for the cluster instead of refused. Exits 3 when a target is refused
    (after printing the whole plan), so CI can gate on it.
    """
    from ..builder import BuildOptions, executor_for, planned
    from .planview import describe, render

    project = open_project(ctx, manifest)
    _, chosen = executor_for(project, BuildOptions(executor=executor,
                                                   executor_options={"address": address} if address else {}))
    view = describe(project, list(targets) or None, planned(project, chosen), explain=explain)
    click.echo(render(view, fmt))
    if view["refused"]:
        ctx.exit(ExitCode.PLAN_REFUSED)


@click.command()
@MANIFEST
@click.option("--key", "public_key", type=click.Path(dir_okay=False, path_type=Path),
              help="Also check each artifact's provenance.json is signed by this Ed25519 public key (PEM) "
                   "and names exactly the artifact there.")
@JSON
@click.pass_context
def verify(ctx, manifest, public_key, as_json):
    """Re-hash every artifact and cache entry of MANIFEST against its lockfile.

    Each target's files are re-hashed, and its artifact.json is checked against the artifact
    digest the lock recorded (so an edited hardware tag, precision or validation status is
    found). With --key, its signed provenance too. Exit 0 when all match; 5 with every
    mismatch listed otherwise.
    """
    from ..verify import verify as run_verify

    key = _public_key(public_key) if public_key else None
    project = open_project(ctx, manifest)
    checked = run_verify(project, key)
    if as_json:
        return emit(ctx, {"files_checked": checked, "provenance_checked": key is not None})
    signed = " and their provenance is signed by that key" if key is not None else ""
    click.echo(f"verified {checked} file(s): all match the lockfile{signed}")


def _public_key(path: Path):
    from ..signing import load_public_key

    return load_public_key(path)


@click.command()
@click.argument("manifests", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
@click.option("--no-wait", is_flag=True, help="If a build is using the cache, skip (exit 0, saying so) instead of waiting.")
@JSON
@click.pass_context
def gc(ctx, manifests, dry_run, no_wait, as_json):
    """Remove cache entries no lockfile or artifact references.

    Entries referenced by the lockfiles of MANIFESTS and by every artifact.json under the
    artifact root are kept; blobs they do not use and dead builds' temp folders are removed.
    A build running on the same cache holds it until its lockfile is written: gc waits for it
    (and says so), or with --no-wait skips, so it never removes a running build's fresh outputs.
    """
    from ..gc import collect_garbage

    waiting = lambda: click.echo("waiting for the build(s) using this cache to finish (--no-wait skips)", err=True)  # noqa: E731
    removed = collect_garbage(ctx.find_root().obj, list(manifests), dry_run, wait=not no_wait, on_wait=waiting)
    if as_json:
        return emit(ctx, {"skipped": removed is None, "dry_run": dry_run, "removed": removed})
    if removed is None:
        click.echo("skipped: a build is using this cache (run gc again when it has finished)", err=True)
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {removed['entries']} entries, {removed['blobs']} blobs "
               f"({removed['bytes'] / 1e6:.1f} MB), {removed['tmp']} stale temp folders")


