"""Ed25519 signing keys for provenance: create, load, identify.

Keys are local PEM files: the private key as PKCS#8 (optionally passphrase-encrypted, mode 0600),
the public key as SubjectPublicKeyInfo (mode 0644). A build finds its private key from an explicit
path, else from the environment:

``BUILDSYS_SIGNING_KEY``           the PEM text itself (for CI secrets)
``BUILDSYS_SIGNING_KEY_FILE``      a path to the PEM file
``BUILDSYS_SIGNING_KEY_PASSWORD``  the passphrase of an encrypted key (optional)

A key's id is the full hex sha256 of its raw 32-byte public key, so anyone holding the public key
can recompute it. Key material and passphrases never enter an error message: errors name the file
or the environment variable, never what it holds, and are raised ``from None`` so no library
exception (which might quote its input) rides along in a traceback.

``cryptography`` is imported only inside the functions that need it; without it they raise
``BackendUnavailable`` with the install command.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

from .errors import BackendUnavailable, BuildsysError

KEY_ENV = "BUILDSYS_SIGNING_KEY"
KEY_FILE_ENV = "BUILDSYS_SIGNING_KEY_FILE"
PASSWORD_ENV = "BUILDSYS_SIGNING_KEY_PASSWORD"
_KEYGEN_HINT = "create a key pair with buildsys.signing.generate_keypair()"


class SigningKeyError(BuildsysError):
    """A signing key is missing, unreadable, of the wrong type, or its passphrase is wrong."""


def crypto() -> SimpleNamespace:
    """The parts of ``cryptography`` signing uses, or ``BackendUnavailable``."""
    try:
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BackendUnavailable("signing needs the 'cryptography' package",
                                 hint="pip install 'buildsys[sign]'") from None
    return SimpleNamespace(ed25519=ed25519, serialization=serialization,
                           InvalidSignature=InvalidSignature, UnsupportedAlgorithm=UnsupportedAlgorithm)


# -- creating -----------------------------------------------------------------------------------


def generate_keypair(private_path: str | os.PathLike, public_path: str | os.PathLike,
                     password: bytes | None = None) -> str:
    """Write a new Ed25519 key pair; return its key id. Existing files are never overwritten.

    The private key file is created with mode 0600 by ``os.open`` itself, so it is never readable
    by others, not even for a moment; ``password`` encrypts it (PKCS#8, best available cipher).
    """
    c = crypto()
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyError("refusing to overwrite an existing key file", where=str(path),
                                  hint="choose another path, or move the old key away first")
    key = c.ed25519.Ed25519PrivateKey.generate()
    _write_new(private_path, _private_pem(c, key, password), 0o600)
    try:
        _write_new(public_path, _public_pem(c, key.public_key()), 0o644)
    except BaseException:
        private_path.unlink()  # half a pair is worse than none
        raise
    return keyid(key.public_key())


def _private_pem(c: SimpleNamespace, key, password: bytes | None) -> bytes:
    s = c.serialization
    encryption = s.BestAvailableEncryption(password) if password else s.NoEncryption()
    return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, encryption)


def _public_pem(c: SimpleNamespace, public_key) -> bytes:
    s = c.serialization
    return public_key.public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never replace it) with ``mode`` from the first byte on."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise SigningKeyError("refusing to overwrite an existing key file", where=str(path),
                              hint="choose another path, or move the old key away first") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot create key file: {exc.strerror}", where=str(path),
                              hint="check that the directory exists and is writable") from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # the umask may have taken bits away from 0644
        f.write(data)


# -- loading ------------------------------------------------------------------------------------


def load_private_key(path: str | os.PathLike | None = None, *, password: bytes | None = None):
    """The Ed25519 private key at ``path``, else from ``BUILDSYS_SIGNING_KEY[_FILE]``.

    ``password`` defaults to ``BUILDSYS_SIGNING_KEY_PASSWORD`` (UTF-8) when that is set.
    """
    data, where = _private_source(path)
    if password is None and os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV].encode()
    return _parse_private(crypto(), data, where, password)


def _private_source(path) -> tuple[bytes, str]:
    """The PEM bytes of the private key and a label naming where they came from (not what)."""
    if path is not None:
        return _read_key_file(Path(path)), str(path)
    text, file = os.environ.get(KEY_ENV), os.environ.get(KEY_FILE_ENV)
    if text and file:
        raise SigningKeyError(f"both {KEY_ENV} and {KEY_FILE_ENV} are set",
                              hint="set only one of them, so it is clear which key signs")
    if text:
        return text.encode(), f"${KEY_ENV}"
    if file:
        return _read_key_file(Path(file)), f"{file} (from ${KEY_FILE_ENV})"
    raise SigningKeyError("no signing key given",
                          hint=f"pass a key path, or set {KEY_FILE_ENV} (a path) or {KEY_ENV} (PEM text)")


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError("key file not found", where=str(path), hint=_KEYGEN_HINT) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read key file: {exc.strerror}", where=str(path),
                              hint="check the path and its permissions") from None


def _parse_private(c: SimpleNamespace, data: bytes, where: str, password: bytes | None):
    if b"-----BEGIN" not in data:
        raise SigningKeyError("not a PEM private key", where=where, hint=_KEYGEN_HINT)
    encrypted = b"-----BEGIN ENCRYPTED" in data or b"Proc-Type: 4,ENCRYPTED" in data
    if encrypted and not password:
        raise SigningKeyError("the private key is encrypted and no passphrase was given", where=where,
                              hint=f"set {PASSWORD_ENV}")
    if password and not encrypted:
        raise SigningKeyError("a passphrase was given but the private key is not encrypted", where=where,
                              hint=f"unset {PASSWORD_ENV}, or use the encrypted key it belongs to")
    try:
        key = c.serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, c.UnsupportedAlgorithm):
        what = "wrong passphrase, or the key is corrupt" if encrypted else "not a readable PEM private key"
        raise SigningKeyError(what, where=where,
                              hint=f"check {PASSWORD_ENV}" if encrypted else _KEYGEN_HINT) from None
    return _require_ed25519(key, c.ed25519.Ed25519PrivateKey, where)


def load_public_key(path: str | os.PathLike):
    """The Ed25519 public key in the SubjectPublicKeyInfo PEM file at ``path``."""
    c = crypto()
    data = _read_key_file(Path(path))
    try:
        key = c.serialization.load_pem_public_key(data)
    except (ValueError, TypeError, c.UnsupportedAlgorithm):
        raise SigningKeyError("not a PEM public key", where=str(path),
                              hint="pass the public half of the pair (the .pub file), not the private key") from None
    return _require_ed25519(key, c.ed25519.Ed25519PublicKey, str(path))


def _require_ed25519(key, kind: type, where: str):
    if not isinstance(key, kind):
        raise SigningKeyError(f"not an Ed25519 key (found {type(key).__name__.lstrip('_')})", where=where,
                              hint=f"provenance signs with Ed25519 only; {_KEYGEN_HINT}")
    return key


# -- identifying --------------------------------------------------------------------------------


def public_key_of(key):
    """The public half of an Ed25519 private key; a public key is returned as it is."""
    c = crypto()
    if isinstance(key, c.ed25519.Ed25519PrivateKey):
        return key.public_key()
    return _require_ed25519(key, c.ed25519.Ed25519PublicKey, "key argument")


def keyid(public_key) -> str:
    """Full hex sha256 of the raw 32-byte Ed25519 public key (a private key gives its public's id)."""
    s = crypto().serialization
    raw = public_key_of(public_key).public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()
