"""``publish``, ``pull``, ``list`` and ``exists``: move built targets to and from registries."""

from __future__ import annotations

from pathlib import Path

import click

from .common import JSON, MANIFEST, emit, load_plugins, open_project

URLS = ("file:///abs/path, file:rel/path, mlflow+http://host:port, mlflow+https://host/path, "
        "oci://host:port/repository")

RETRIES = click.option(
    "--retries", type=click.IntRange(0, 20), default=None, metavar="N",
    help="Retries of a transient failure (connection refused or reset, 429, 5xx) with bounded "
         "exponential backoff; default 3, or BUILDSYS_REGISTRY_RETRIES.")
VERBOSE = click.option("-v", "--verbose", is_flag=True, help="Report each file as it is transferred.")


def _open(catalog, url: str | None, retries: int | None, settings=None):
    """The registry at ``url``, else at the project's configured one (``[registry] url``)."""
    from ..config import project_settings
    from ..registry import open_registry
    from ..transfer import Retry

    url = url or (settings or project_settings(Path.cwd() / "buildsys.toml")).registry
    if not url:
        raise click.UsageError("no registry named: pass --to/--from URL, or set [registry] url in buildsys.toml")
    retry = Retry(attempts=retries + 1) if retries is not None else Retry.from_env()
    return open_registry(catalog, url, retry=retry)


def _progress(verbose: bool, verb: str):
    if not verbose:
        return None
    return lambda name, size: click.echo(f"  {verb} {name} ({size / 1e6:.1f} MB)", err=True)


@click.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Publish only this target (repeatable).")
@click.option("--to", "url", help=f"Registry URL: {URLS} [default: [registry] url in buildsys.toml].")
@click.option("--dry-run", is_flag=True,
              help="Check everything (files, registry reachable, immutability) and write nothing.")
@click.option("--alias", metavar="NAME",
              help="Also point the movable name NAME-<target> at each published target "
                   "(an MLflow model alias, an extra OCI tag).")
@click.option("--sign", "sign_with", is_flag=True,
              help="Sign each target's provenance first (as 'buildsys sign'), so it travels signed.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The private key for --sign [default: $BUILDSYS_SIGNING_KEY or $BUILDSYS_SIGNING_KEY_FILE].")
@RETRIES
@VERBOSE
@JSON
@click.pass_context
def publish(ctx, manifest, targets, url, dry_run, alias, sign_with, key_path, retries, verbose, as_json):
    """Publish MANIFEST's built targets (files + artifact.json + provenance) to the registry at URL.

    Every file is re-hashed first, and artifact.json is checked against the artifact digest
    the lockfile recorded: an artifact edited after the build is refused. Files go before the
    metadata that makes a version visible, so an interrupted publish leaves no version that
    looks complete. The registry records the artifact digest (pull checks it). Versions are
    immutable: the same digest again is a no-op; a different one is refused (exit 6).
    Credentials come from the environment (see each registry's documentation), never from
    the URL.
    """
    from ..artifacts import target_dir

    project = open_project(ctx, manifest)
    registry = _open(project.catalog, url, retries, project.settings)
    names = list(targets) or list(project.manifest.targets)
    for name in names:
        if name not in project.manifest.targets:
            raise click.BadParameter(f"no target '{name}' in {manifest}", param_hint="--target")
    if sign_with and not dry_run:
        from ..signing import load_private_key
        from .provenance_commands import sign_targets

        sign_targets(project, names, load_private_key(key_path))
    extra = {"alias": alias} if alias else {}
    published = []
    for name in names:
        directory = target_dir(project.out_root, project.manifest.name, project.manifest.version, name)
        _check_against_lock(project, name, directory)
        result = registry.publish(directory, dry_run=dry_run, progress=_progress(verbose, "sent"), **extra)
        published.append({"ref": str(result.ref), "target": name, "digest": result.ref.digest, "created": result.created,
                          "dry_run": result.dry_run, "location": result.location})
        if not as_json:
            click.echo(f"{result.ref}  {_state(result)}  {result.location}")
    if as_json:
        emit(ctx, {"published": published})


def _state(result) -> str:
    if result.dry_run:
        return "would publish" if result.created else "unchanged (already published)"
    return "published" if result.created else "unchanged (already published)"


def _check_against_lock(project, target: str, directory: Path) -> None:
    """Refuse to publish a target whose artifact.json or files differ from what the lock recorded."""
    from .. import lock as lockfile
    from ..errors import VerifyError
    from ..verify import against_lock

    lock = lockfile.read(lockfile.lock_path(project.manifest.path)) or {}
    entry = lock.get("targets", {}).get(target)
    if entry is None:
        return  # not built here, or by an older buildsys: local_tree still re-hashes the files
    problems = against_lock(directory, entry)
    if problems:
        raise VerifyError(f"target '{target}' does not match the lockfile:\n  " + "\n  ".join(problems),
                          hint="rebuild the target before publishing it")


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("target", required=False)
@click.option("--from", "url", help="Registry URL to pull from [default: [registry] url in buildsys.toml].")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to place the target directory in.")
@click.option("--hardware", "hardware", multiple=True, metavar="HW",
              help="Without TARGET: select for a machine offering HW (a tag or product name: l4, "
                   "sm89, cpu-x86_64-avx2; repeatable) instead of this one.")
@click.option("--dry-run", is_flag=True, help="Resolve (and select) what would be pulled; write nothing.")
@click.option("--digest", "pinned", metavar="sha256:HEX",
              help="Pull only this artifact digest (as 'buildsys list' and the lockfile show it).")
@click.option("--lock", "lock_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Pull only the artifact digest this lockfile recorded for the target.")
@click.option("--key", "public_key", type=click.Path(dir_okay=False, path_type=Path),
              help="Require provenance signed by this Ed25519 public key (PEM), naming exactly the artifact.")
@RETRIES
@VERBOSE
@JSON
@click.pass_context
def pull(ctx, name, version, target, url, dest, hardware, dry_run, pinned, lock_file, public_key, retries, verbose,
         as_json):
    """Fetch NAME VERSION TARGET from a registry into DEST/TARGET, verifying every checksum.

    Without TARGET, pick the published target of NAME VERSION whose hardware tag runs on this
    machine: a CUDA engine for one of its GPUs' compute capabilities, else a CPU build for its
    arch and ISA, else a portable one (or for the machine --hardware describes). Nothing is
    written to DEST unless every file matches its checksum, artifact.json matches the digest
    the registry recorded (or the one --digest/--lock pins) and, with --key, the provenance is
    signed by that key and names exactly this artifact.
    """
    from dataclasses import replace

    from ..registry import ArtifactRef

    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        _check_name(value, what)
    if pinned and lock_file:
        raise click.UsageError("--digest and --lock both pin the digest: give one")
    pm, catalog = load_plugins(ctx)
    registry = _open(catalog, url, retries)
    ref = ArtifactRef(name, version, target) if target else _select(pm, registry, name, version, hardware)
    ref = replace(ref, digest=_pinned_digest(ref, pinned, lock_file))
    if dry_run:
        if not registry.exists(ref):
            from ..errors import RegistryError

            raise RegistryError(f"{ref} is not in {url or 'the configured registry'}")
        if as_json:
            return emit(ctx, {"ref": str(ref), "dry_run": True, "path": str(Path(dest) / ref.target)})
        click.echo(f"would pull {ref} -> {Path(dest) / ref.target}")
        return
    key = _public_key(public_key) if public_key else None
    path = _pull_verified(registry, ref, Path(dest), key, _progress(verbose, "received"))
    mismatches = _runtime_mismatches(path)
    for line in mismatches:  # pulled for deployment elsewhere is fine: say it, do not refuse
        click.secho(f"warning: {ref}: {line}: it may not load here", err=True, fg="yellow")
    if as_json:
        return emit(ctx, {"ref": str(ref), "path": str(path), "digest": _digest_of(path), "provenance_checked": key is not None,
                          "runtime_mismatches": mismatches})
    signed = "; provenance signed by that key" if key is not None else ""
    click.echo(f"pulled {ref} -> {path} (checksums verified; artifact digest {_digest_of(path)}{signed})")


def _runtime_mismatches(path: Path) -> list[str]:
    from ..artifacts import read_record, runtime_mismatches

    return runtime_mismatches(read_record(path))


def _pinned_digest(ref, pinned: str | None, lock_file: Path | None) -> str:
    """The digest the caller pins (``--digest``, or the target's entry in ``--lock``), else ""."""
    import re

    if pinned:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", pinned):
            raise click.BadParameter("an artifact digest is 'sha256:' and 64 hex digits", param_hint="--digest")
        return pinned
    if lock_file is None:
        return ""
    from .. import lock as lockfile
    from ..errors import LockMismatch

    lock = lockfile.read(lock_file)
    if lock is None:
        raise LockMismatch(f"no lockfile at {lock_file}")
    if (lock.get("name"), lock.get("version")) not in ((ref.name, ref.version), (None, None)):
        raise LockMismatch(f"{lock_file} is the lock of {lock.get('name')} {lock.get('version')}, not "
                           f"{ref.name} {ref.version}")
    digest = lock.get("targets", {}).get(ref.target, {}).get("digest")
    if not digest:
        raise LockMismatch(f"{lock_file} records no artifact digest for target '{ref.target}'",
                           hint="rebuild with this buildsys to record it, or pin with --digest")
    return digest


def _pull_verified(registry, ref, dest: Path, key, progress) -> Path:
    """Pull into a hidden folder beside DEST/TARGET; check the provenance (with ``key``); then
    swap it in. Without a key this is the registry's own verified pull."""
    if key is None:
        return registry.pull(ref, dest, progress=progress)
    import shutil

    from ..fsutil import replace_dir, staging_dir
    from ..provenance import verify_directory

    created = not dest.exists()
    holding = staging_dir(dest, ref.target)
    try:
        pulled = registry.pull(ref, holding, progress=progress)
        verify_directory(pulled, key)
        replace_dir(pulled, dest / ref.target)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(holding, ignore_errors=True)
    return dest / ref.target


def _public_key(path: Path):
    from ..signing import load_public_key

    return load_public_key(path)


def _digest_of(directory: Path) -> str:
    from ..artifacts import artifact_digest, read_record

    return artifact_digest(read_record(directory))



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
@click.option("--from", "url", help="Registry URL [default: [registry] url in buildsys.toml].")
@RETRIES
@JSON
@click.pass_context
def list_command(ctx, name, url, retries, as_json):
    """List what a registry holds (or only NAME): name, version, target, hardware, digest."""
    _check_name(name, "name")
    _, catalog = load_plugins(ctx)
    refs = _open(catalog, url, retries).list(name)
    if as_json:
        return emit(ctx, [{"name": r.name, "version": r.version, "target": r.target, "hardware": r.hardware or None,
                           "digest": r.digest or None} for r in refs])
    for ref in refs:
        hardware = ref.hardware or "?"
        click.echo(f"{ref.name:<20} {ref.version:<10} {ref.target:<16} {hardware:<18} {ref.digest or '?'}")
    if not refs:
        click.echo("(empty)", err=True)


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("target")
@click.option("--from", "url", help="Registry URL [default: [registry] url in buildsys.toml].")
@RETRIES
@JSON
@click.pass_context
def exists(ctx, name, version, target, url, retries, as_json):
    """Exit 0 if NAME VERSION TARGET is published (completely) at URL; exit 1 if not.

    A registry that cannot be reached exits 6, so a script can tell "absent" from "unknown".
    """
    from ..registry import ArtifactRef

    for value, what in ((name, "name"), (version, "version"), (target, "target")):
        _check_name(value, what)
    _, catalog = load_plugins(ctx)
    registry = _open(catalog, url, retries)
    ref = ArtifactRef(name, version, target)
    present = registry.exists(ref)
    if as_json:
        from ..envelope import dumps, json_envelope

        click.echo(dumps(json_envelope("exists", {"ref": str(ref), "present": present}, exit_code=0 if present else 1)))
    elif present:
        click.echo(f"{ref} present")
    else:
        click.echo(f"{ref} absent", err=True)
    if not present:
        ctx.exit(1)
