"""``sign`` and ``keygen``: signed provenance for built artifacts (in-toto statements in DSSE
envelopes, Ed25519 keys; ``buildsys.provenance``, ``buildsys.signing``)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import MANIFEST, open_project

KEY = click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
                   help="Ed25519 private key (PEM) [default: $BUILDSYS_SIGNING_KEY (the PEM text) or "
                        "$BUILDSYS_SIGNING_KEY_FILE; a passphrase from $BUILDSYS_SIGNING_KEY_PASSWORD].")


@click.command()
@MANIFEST
@click.option("-t", "--target", "targets", multiple=True, help="Sign only this target (repeatable).")
@KEY
@click.pass_context
def sign(ctx, manifest, targets, key_path):
    """Sign the provenance of MANIFEST's built targets with a local Ed25519 key.

    Each target is first checked against the lockfile (files, and artifact.json through its
    artifact digest); then its provenance — an in-toto statement whose subject is that digest,
    naming the manifest, the target's lock entries, the tool versions and the build host — is
    signed and written to provenance.json in the target's folder. Check it with
    'buildsys verify --key PUBLIC' or 'buildsys pull --key PUBLIC'. The key is read from the
    file or the environment and is never written anywhere.
    """
    from ..signing import keyid, load_private_key

    key = load_private_key(key_path)
    project = open_project(ctx, manifest)
    for target in sign_targets(project, list(targets) or None, key):
        click.echo(f"signed {target} (key {keyid(key)[:16]}…)")


def sign_targets(project, targets: list[str] | None, key) -> list[str]:
    """Check each target against the lock, then sign its provenance; return the targets signed."""
    from .. import lock as lockfile
    from ..artifacts import read_record, target_dir
    from ..errors import VerifyError
    from ..provenance import sign_directory, target_statement
    from ..verify import against_lock

    m = project.manifest
    lock = lockfile.read(lockfile.lock_path(m.path)) or {"targets": {}}
    names = targets or [t for t in m.targets if t in lock["targets"]]
    for name in names:
        entry = lock["targets"].get(name)
        if entry is None:
            raise VerifyError(f"target '{name}' is not in the lockfile", hint=f"build it first: buildsys build {m.path} -t {name}")
        directory = target_dir(project.out_root, m.name, m.version, name)
        problems = against_lock(directory, entry)
        if problems:
            raise VerifyError(f"target '{name}' does not match the lockfile, so it is not signed:\n  "
                              + "\n  ".join(problems), hint="rebuild it first")
        sign_directory(directory, target_statement(project, read_record(directory), lock), key)
    return names


@click.command()
@click.option("--private", "private_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the private key (PEM, mode 0600; never overwritten).")
@click.option("--public", "public_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the public key (PEM) to hand to whoever verifies.")
def keygen(private_path, public_path):
    """Make an Ed25519 key pair for 'buildsys sign' (encrypted with $BUILDSYS_SIGNING_KEY_PASSWORD if set)."""
    import os

    from ..signing import PASSWORD_ENV, generate_keypair

    password = os.environ.get(PASSWORD_ENV)
    kid = generate_keypair(private_path, public_path, password.encode() if password else None)
    click.echo(f"wrote {private_path} (private, keep it secret) and {public_path} (public); key id {kid[:16]}…")
