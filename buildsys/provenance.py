"""Artifact digests and signed build provenance (in-toto Statement v1, SLSA provenance v1, DSSE).

**What is signed.** One artifact directory is summed up by one digest,
``buildsys.artifacts.artifact_digest``: the
sha256 of the canonical JSON of its ``artifact.json`` record, which lists every file's sha256, so
the digest covers every byte of the artifact. ``statement`` builds an in-toto Statement whose
single subject is ``<name>/<version>/<target>`` with that digest and whose predicate is SLSA v1
provenance: the manifest and lock file (by sha256), the tool versions, each artifact file, each
action key of the build chain, the builder and the build host. ``sign_statement`` wraps the
canonical bytes of the statement in a DSSE envelope signed with an Ed25519 key; the signature is
over DSSE's pre-authentication encoding (``pae``), so the payload type is signed too.

**Where keys come from.** Local PEM files or the environment; see ``buildsys.signing``
(``generate_keypair``, ``load_private_key``, ``load_public_key``, ``keyid``).

**What verification proves.** ``verify_envelope`` with a public key you already trust, then
``check_subject`` with the digest of the artifact you hold, prove that the holder of the matching
private key signed this statement about exactly this artifact, and that neither was changed
since. It does *not* prove who holds the key: there is no certificate chain and no identity
binding, so trust in the public key must come from elsewhere (you distributed it yourself). There
is no transparency log either: a signature cannot be looked up, timestamped or revoked, and a
stolen key can sign statements that verify. The predicate says what the builder *claims* about
inputs and host; it is evidence of who made the claim, not that the claim is true.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from .artifacts import PROVENANCE, artifact_digest, read_record
from .errors import VerifyError
from .fsutil import atomic_write
from .hashing import canonical
from .signing import SigningKeyError, crypto, keyid, public_key_of

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "urn:buildsys:build:v1"
BUILDER_PREFIX = "urn:buildsys:builder:"
ACTION_PREFIX = "urn:buildsys:action:"


def _sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _hex(digest: str) -> str:
    """The hex part of ``sha256:<hex>`` (a bare hex digest is accepted as it is)."""
    algorithm, _, value = digest.rpartition(":")
    if algorithm not in ("", "sha256"):
        raise VerifyError(f"unsupported digest algorithm '{algorithm}'", hint="use a sha256:<hex> digest")
    return value


# -- the statement ------------------------------------------------------------------------------


def statement(record: dict, *, manifest_name: str, manifest_text: str | bytes, lock_name: str,
              lock_text: str | bytes, tools: dict, host: dict, buildsys_version: str) -> dict:
    """An in-toto Statement v1 with SLSA v1 provenance for the artifact ``record`` describes.

    ``manifest_text``/``lock_text`` are hashed as given (``str`` as UTF-8), so pass the files'
    exact contents. ``tools`` maps tool names to versions; ``host`` is the build host's facts.
    """
    name, version, target = _field(record, "name"), _field(record, "version"), _field(record, "target")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{name}/{version}/{target}", "digest": {"sha256": _hex(artifact_digest(record))}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"manifest": {"name": manifest_name, "sha256": _sha256(manifest_text)},
                                       "name": name, "version": version, "target": target},
                "internalParameters": {"tools": dict(tools)},
                "resolvedDependencies": _dependencies(record, lock_name, lock_text),
            },
            "runDetails": {
                "builder": {"id": BUILDER_PREFIX + buildsys_version, "version": {"buildsys": buildsys_version}},
                # an extension field, named so that it cannot collide with SLSA's own
                "metadata": {"buildsys_host": dict(host)},
            },
        },
    }


def _field(record: dict, key: str):
    if not isinstance(record, dict) or key not in record:
        raise VerifyError(f"artifact.json record has no '{key}'", hint="rebuild the target to rewrite artifact.json")
    return record[key]


def _dependencies(record: dict, lock_name: str, lock_text: str | bytes) -> list[dict]:
    """The lock file, every artifact file, then every action key of the chain, in record order."""
    lock = [{"name": lock_name, "digest": {"sha256": _sha256(lock_text)}}]
    files = [{"name": f["name"], "digest": {"sha256": f["sha256"]}} for f in _field(record, "files")]
    # an action key is the sha256 of the canonical description of one build step
    actions = [{"name": f"action/{c.get('node', c['stage'])}", "uri": ACTION_PREFIX + c["action_key"],
                "digest": {"sha256": c["action_key"]}, "annotations": {"stage": c["stage"]}}
               for c in record.get("chain", [])]
    return lock + files + actions


def check_subject(statement: dict, digest: str, ref: str) -> None:
    """Raise ``VerifyError`` unless ``statement`` is provenance for exactly ``ref`` at ``digest``.

    ``ref`` is ``<name>/<version>/<target>``; ``digest`` is ``artifact_digest`` of the record held.
    """
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise VerifyError(f"statement is not SLSA provenance (predicateType {statement.get('predicateType')!r})",
                          where=ref, hint=f"expected {PREDICATE_TYPE}")
    subjects = statement.get("subject") or []
    expected = _hex(digest)
    for subject in subjects:
        if subject.get("name") == ref and subject.get("digest", {}).get("sha256") == expected:
            return
    found = ", ".join(f"{s.get('name')}@sha256:{s.get('digest', {}).get('sha256')}" for s in subjects) or "none"
    raise VerifyError(f"provenance is for {found}, not {ref}@sha256:{expected}", where=ref,
                      hint="the artifact changed after signing, or this provenance belongs to another artifact")


def target_statement(project, record: dict, lock: dict) -> dict:
    """The statement of one built target of ``project``: its complete ``record`` (artifact.json)
    and, as the lock it was built from, that target's entries of ``lock`` (its target entry and
    its nodes), so that building another target does not change this one's provenance."""
    from .lock import lock_path

    target = record["target"]
    entry = lock["targets"][target]
    subset = {"targets": {target: entry}, "nodes": {n: lock["nodes"][n] for n in entry["nodes"]}}
    manifest = project.manifest.path
    return statement(record, manifest_name=manifest.name, manifest_text=Path(manifest).read_bytes(),
                     lock_name=f"{lock_path(manifest).name}#{target}", lock_text=canonical(subset),
                     tools=project.tool_versions(), host=project.host.describe(),
                     buildsys_version=record.get("buildsys", ""))


def unsigned(statement: dict) -> dict:
    """A DSSE envelope holding ``statement`` with no signature yet (``buildsys sign`` adds one)."""
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(canonical(statement).encode()).decode(),
            "signatures": []}


def sign_directory(directory: Path, statement_: dict, key) -> dict:
    """Sign ``statement_`` (about the artifact in ``directory``, checked) and write it there."""
    record = read_record(directory)
    check_subject(statement_, artifact_digest(record), artifact_ref(record))
    envelope = sign_statement(statement_, key)
    atomic_write(Path(directory) / PROVENANCE, json.dumps(envelope, indent=1, sort_keys=True) + "\n")
    return envelope


def verify_directory(directory: Path, public_key) -> dict:
    """The statement of the artifact in ``directory`` once its provenance is signed by
    ``public_key`` and names exactly that artifact (its artifact.json as it is now); else
    ``VerifyError``."""
    record = read_record(directory)
    path = Path(directory) / PROVENANCE
    try:
        envelope = json.loads(path.read_text())
    except FileNotFoundError:
        raise VerifyError(f"{artifact_ref(record)} has no {PROVENANCE}", where=str(directory),
                          hint="sign it: buildsys sign MANIFEST (or publish --sign)") from None
    except ValueError as exc:
        raise VerifyError(f"{path} is not JSON: {exc}", hint="sign the artifact again") from None
    statement_ = verify_envelope(envelope, public_key)
    check_subject(statement_, artifact_digest(record), artifact_ref(record))
    return statement_


def unsigned_statement(directory: Path) -> dict | None:
    """The statement in the ``provenance.json`` of the artifact in ``directory``, read without
    checking any signature (None when there is none): enough to find an artifact.json edited
    after the build, not to prove who built it (that is ``verify_directory`` with a key).
    ``VerifyError`` when the file is not a statement envelope."""
    path = Path(directory) / PROVENANCE
    if not path.is_file():
        return None
    try:
        envelope = json.loads(path.read_text())
    except ValueError as exc:
        raise VerifyError(f"{path} is not JSON: {exc}", hint="build or sign the artifact again") from None
    _, payload, _ = _envelope_parts(envelope)
    return _parse_statement(payload)


def artifact_ref(record: dict) -> str:
    """``<name>/<version>/<target>``: the subject name a statement gives the artifact."""
    return f"{_field(record, 'name')}/{_field(record, 'version')}/{_field(record, 'target')}"


# -- DSSE ---------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_statement(statement: dict, key) -> dict:
    """A DSSE envelope holding the canonical JSON of ``statement``, signed by Ed25519 ``key``."""
    c = crypto()
    if not isinstance(key, c.ed25519.Ed25519PrivateKey):
        raise SigningKeyError(f"signing needs an Ed25519 private key, not {type(key).__name__}",
                              hint="load one with buildsys.signing.load_private_key()")
    payload = canonical(statement).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": keyid(key), "sig": base64.b64encode(signature).decode()}]}


def verify_envelope(envelope: dict, public_key) -> dict:
    """The statement in ``envelope`` once a signature by ``public_key`` verifies; else ``VerifyError``.

    The payload is parsed only after its signature checked out. A signature whose ``keyid`` is
    empty is tried too (DSSE makes the keyid an unauthenticated, optional hint).
    """
    c = crypto()
    public_key = public_key_of(public_key)
    payload_type, payload, signatures = _envelope_parts(envelope)
    if payload_type != PAYLOAD_TYPE:
        raise VerifyError(f"envelope payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}",
                          hint="this is not an in-toto statement envelope")
    wanted = keyid(public_key)
    candidates = [s for s in signatures if (s.get("keyid") or "") in (wanted, "")]
    if not candidates:
        found = ", ".join(str(s.get("keyid"))[:16] for s in signatures) or "none"
        raise VerifyError(f"envelope has no signature by key {wanted[:16]}… (signed by: {found})",
                          hint="verify with the public key of whoever signed it, or re-sign with this key")
    message = pae(payload_type, payload)
    for s in candidates:
        try:
            public_key.verify(_b64decode(s.get("sig"), "signature"), message)
            return _parse_statement(payload)
        except c.InvalidSignature:
            continue
    raise VerifyError(f"signature by key {wanted[:16]}… does not verify",
                      hint="the envelope was changed after signing, or it was signed by another key")


def _envelope_parts(envelope) -> tuple[str, bytes, list[dict]]:
    if not isinstance(envelope, dict):
        raise VerifyError("not a DSSE envelope (expected a JSON object)")
    for key in ("payloadType", "payload", "signatures"):
        if key not in envelope:
            raise VerifyError(f"not a DSSE envelope: no '{key}'",
                              hint="pass the envelope JSON that sign_statement returned")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not all(isinstance(s, dict) for s in signatures):
        raise VerifyError("DSSE envelope 'signatures' is not a list of objects")
    return envelope["payloadType"], _b64decode(envelope["payload"], "payload"), signatures


def _b64decode(text, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (DSSE allows both alphabets)."""
    if not isinstance(text, str):
        raise VerifyError(f"envelope {what} is not a base64 string")
    padded = text + "=" * (-len(text) % 4)
    altchars = b"-_" if ("-" in text or "_" in text) else None
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise VerifyError(f"envelope {what} is not valid base64", hint="the envelope file is damaged") from None


def _parse_statement(payload: bytes) -> dict:
    try:
        data = json.loads(payload)
    except ValueError:
        raise VerifyError("signed payload is not JSON", hint="it was signed by a tool that is not buildsys") from None
    if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
        raise VerifyError(f"signed payload is not an in-toto Statement v1 (_type {_type_of(data)!r})")
    return data


def _type_of(data) -> object:
    return data.get("_type") if isinstance(data, dict) else type(data).__name__
