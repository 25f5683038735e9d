"""Artifact digests, provenance statements, DSSE envelopes and Ed25519 keys."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import traceback

import pytest

from buildsys.hashing import canonical
from buildsys import signing
from buildsys.errors import BackendUnavailable, BuildsysError, VerifyError
from buildsys.provenance import (artifact_digest, check_subject, pae, sign_statement, statement,
                                 verify_envelope)
from buildsys.signing import SigningKeyError, generate_keypair, keyid, load_private_key, load_public_key

A_SHA = "a" * 64
B_SHA = "b" * 64
MANIFEST = "name: resnet18\nversion: 1.2.0\n"
LOCK = '{"schema": 1}\n'


@pytest.fixture
def record() -> dict:
    """An artifact.json record shaped like ``build.target_record`` plus its files."""
    return {
        "schema": 1, "name": "resnet18", "version": "1.2.0", "target": "cpu", "kind": "onnx",
        "format": "onnx", "precision": "fp32", "hardware": "cpu_x86_64", "deterministic": True,
        "chain": [{"node": "src", "stage": "torch.source", "action_key": "1" * 64},
                  {"node": "onnx", "stage": "onnx.export", "action_key": "2" * 64, "options": {"opset": 17}}],
        "validation": {"status": "passed", "cosine": 0.9999},
        "host": {"os": "linux", "facts": {"cpu": "x86_64"}}, "buildsys": "0.1.0",
        "files": [{"name": "resnet18-1.2.0-onnx-fp32-cpu_x86_64.onnx", "sha256": A_SHA, "size": 10, "role": "primary"},
                  {"name": "weights.bin", "sha256": B_SHA, "size": 20, "role": "data"}],
    }


def make_statement(record: dict) -> dict:
    return statement(record, manifest_name="resnet18.yaml", manifest_text=MANIFEST, lock_name="buildsys.lock",
                     lock_text=LOCK, tools={"torch": "2.11.0", "onnx": "1.17.0"},
                     host={"os": "linux", "cpu": "x86_64"}, buildsys_version="0.1.0")


@pytest.fixture
def keys(tmp_path):
    generate_keypair(tmp_path / "a.key", tmp_path / "a.pub")
    return load_private_key(tmp_path / "a.key"), load_public_key(tmp_path / "a.pub")


@pytest.fixture
def other_key(tmp_path):
    generate_keypair(tmp_path / "b.key", tmp_path / "b.pub")
    return load_private_key(tmp_path / "b.key")


def reencode(envelope: dict, **changes) -> dict:
    return dict(copy.deepcopy(envelope), **changes)


# -- artifact_digest ----------------------------------------------------------------------------


def test_digest_is_sha256_of_the_canonical_record(record):
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert artifact_digest(record) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def test_digest_ignores_key_order_and_whitespace_of_the_file(record, tmp_path):
    pretty, compact = tmp_path / "pretty.json", tmp_path / "compact.json"
    pretty.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    reversed_record = dict(reversed(list(record.items())))
    compact.write_text(json.dumps(reversed_record, separators=(",", ":")))
    assert pretty.read_text() != compact.read_text()
    assert artifact_digest(json.loads(pretty.read_text())) == artifact_digest(json.loads(compact.read_text()))


@pytest.mark.parametrize("change", [
    lambda r: r.update(hardware="cuda_sm89"),
    lambda r: r["files"][1].update(sha256="c" * 64),
    lambda r: r["validation"].update(status="not run"),
    lambda r: r["chain"][0].update(action_key="3" * 64),
    lambda r: r["files"].pop(),
], ids=["hardware", "file-sha256", "validation-status", "action-key", "file-removed"])
def test_digest_changes_with_any_value(record, change):
    before = artifact_digest(record)
    change(record)
    assert artifact_digest(record) != before


# -- statement ----------------------------------------------------------------------------------


def test_statement_layout(record):
    st = make_statement(record)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [{"name": "resnet18/1.2.0/cpu", "digest": {"sha256": artifact_digest(record)[7:]}}]
    build = st["predicate"]["buildDefinition"]
    assert build["buildType"] == "urn:buildsys:build:v1"
    assert build["externalParameters"] == {
        "manifest": {"name": "resnet18.yaml", "sha256": hashlib.sha256(MANIFEST.encode()).hexdigest()},
        "name": "resnet18", "version": "1.2.0", "target": "cpu"}
    assert build["internalParameters"] == {"tools": {"torch": "2.11.0", "onnx": "1.17.0"}}
    deps = build["resolvedDependencies"]
    assert deps[0] == {"name": "buildsys.lock", "digest": {"sha256": hashlib.sha256(LOCK.encode()).hexdigest()}}
    assert deps[1:3] == [{"name": f["name"], "digest": {"sha256": f["sha256"]}} for f in record["files"]]
    assert [d["uri"] for d in deps[3:]] == ["urn:buildsys:action:" + "1" * 64, "urn:buildsys:action:" + "2" * 64]
    run = st["predicate"]["runDetails"]
    assert run["builder"]["id"] == "urn:buildsys:builder:0.1.0"
    assert run["metadata"]["buildsys_host"] == {"os": "linux", "cpu": "x86_64"}
    json.dumps(st)  # plain JSON all the way down


def test_statement_names_a_missing_record_field(record):
    del record["files"]
    with pytest.raises(VerifyError, match="no 'files'"):
        make_statement(record)


# -- PAE ----------------------------------------------------------------------------------------


def test_pae_known_bytes():
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t\u00e9", b"\x00") == b"DSSEv1 3 t\xc3\xa9 1 \x00"  # lengths count bytes, not characters


# -- sign / verify ------------------------------------------------------------------------------


def test_round_trip(record, keys):
    private, public = keys
    st = make_statement(record)
    envelope = sign_statement(st, private)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0]["keyid"] == keyid(public)
    assert base64.b64decode(envelope["payload"]) == canonical(st).encode()
    assert verify_envelope(json.loads(json.dumps(envelope)), public) == st
    check_subject(st, artifact_digest(record), "resnet18/1.2.0/cpu")


def test_signature_is_over_pae_of_the_payload(record, keys):
    private, public = keys
    envelope = sign_statement(make_statement(record), private)
    sig, payload = base64.b64decode(envelope["signatures"][0]["sig"]), base64.b64decode(envelope["payload"])
    from cryptography.exceptions import InvalidSignature
    public.verify(sig, pae("application/vnd.in-toto+json", payload))  # raises if not
    for other in (payload, pae("application/json", payload)):  # the type is signed with the body
        with pytest.raises(InvalidSignature):
            public.verify(sig, other)


def test_tampered_payload_fails(record, keys):
    private, public = keys
    envelope = sign_statement(make_statement(record), private)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b"resnet18")] ^= 0x01  # "snet18": still JSON, no longer what was signed
    tampered = reencode(envelope, payload=base64.b64encode(bytes(payload)).decode())
    with pytest.raises(VerifyError, match="does not verify"):
        verify_envelope(tampered, public)


def test_signature_by_another_key_fails(record, keys, other_key):
    _, public = keys
    envelope = sign_statement(make_statement(record), other_key)
    with pytest.raises(VerifyError, match="no signature by key"):
        verify_envelope(envelope, public)
    # claiming the right keyid does not help: the signature itself is checked
    envelope["signatures"][0]["keyid"] = keyid(public)
    with pytest.raises(VerifyError, match="does not verify"):
        verify_envelope(envelope, public)


def test_wrong_payload_type_fails(record, keys):
    private, public = keys
    envelope = reencode(sign_statement(make_statement(record), private), payloadType="application/json")
    with pytest.raises(VerifyError, match="payloadType"):
        verify_envelope(envelope, public)


@pytest.mark.parametrize("field", ["payload", "sig"])
def test_bad_base64_fails(record, keys, field):
    private, public = keys
    envelope = sign_statement(make_statement(record), private)
    if field == "payload":
        envelope["payload"] = "not*base64!"
    else:
        envelope["signatures"][0]["sig"] = "%%%"
    with pytest.raises(VerifyError, match=f"{'payload' if field == 'payload' else 'signature'} is not valid base64"):
        verify_envelope(envelope, public)


def test_url_safe_unpadded_base64_and_empty_keyid_verify(record, keys):
    private, public = keys
    st = make_statement(record)
    envelope = sign_statement(st, private)
    raw = base64.b64decode(envelope["payload"])
    envelope["payload"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    envelope["signatures"][0]["keyid"] = ""
    assert verify_envelope(envelope, public) == st


def test_not_an_envelope(keys):
    _, public = keys
    with pytest.raises(VerifyError, match="no 'signatures'"):
        verify_envelope({"payloadType": "application/vnd.in-toto+json", "payload": ""}, public)


# -- check_subject ------------------------------------------------------------------------------


def test_check_subject_mismatch(record):
    st = make_statement(record)
    good = artifact_digest(record)
    check_subject(st, good, "resnet18/1.2.0/cpu")
    check_subject(st, good[len("sha256:"):], "resnet18/1.2.0/cpu")  # bare hex is the same digest
    changed = dict(record, hardware="cuda_sm89")
    with pytest.raises(VerifyError, match="not resnet18/1.2.0/cpu@sha256:") as err:
        check_subject(st, artifact_digest(changed), "resnet18/1.2.0/cpu")
    assert good[7:] in str(err.value)  # says which digest the provenance is for
    with pytest.raises(VerifyError, match="not resnet18/1.2.0/gpu"):
        check_subject(st, good, "resnet18/1.2.0/gpu")
    with pytest.raises(VerifyError, match="predicateType"):
        check_subject(dict(st, predicateType="https://example.invalid/other"), good, "resnet18/1.2.0/cpu")
    with pytest.raises(VerifyError, match="algorithm 'md5'"):
        check_subject(st, "md5:" + good[7:], "resnet18/1.2.0/cpu")


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_key_file_modes(tmp_path, umask):
    old = os.umask(umask)
    try:
        generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644
    assert (tmp_path / "k.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "k.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_private_key_is_created_0600_exclusively(tmp_path, monkeypatch):
    calls = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        calls.append((str(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", spy)
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    path, flags, mode = next(c for c in calls if c[0].endswith("k.key"))
    assert mode == 0o600 and flags & os.O_CREAT and flags & os.O_EXCL


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "k.key").write_text("old private")
    with pytest.raises(SigningKeyError, match="refusing to overwrite") as err:
        generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    assert err.value.where == str(tmp_path / "k.key")
    assert (tmp_path / "k.key").read_text() == "old private" and not (tmp_path / "k.pub").exists()
    (tmp_path / "n.pub").write_text("old public")
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "n.key", tmp_path / "n.pub")
    assert not (tmp_path / "n.key").exists() and (tmp_path / "n.pub").read_text() == "old public"


def test_no_half_pair_when_the_public_file_appears_meanwhile(tmp_path, monkeypatch):
    real = signing._write_new

    def racing(path, data, mode):
        if path.suffix == ".pub":
            path.write_text("written by someone else meanwhile")
        real(path, data, mode)

    monkeypatch.setattr(signing, "_write_new", racing)
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    assert not (tmp_path / "k.key").exists()
    assert (tmp_path / "k.pub").read_text() == "written by someone else meanwhile"


def test_keyid_is_sha256_of_raw_public_key(keys, other_key):
    private, public = keys
    from cryptography.hazmat.primitives import serialization as s
    raw = public.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
    assert len(raw) == 32
    assert keyid(public) == keyid(private) == hashlib.sha256(raw).hexdigest()
    assert keyid(other_key) != keyid(public)


@pytest.fixture
def clean_env(monkeypatch):
    for name in (signing.KEY_ENV, signing.KEY_FILE_ENV, signing.PASSWORD_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_private_key_from_environment(tmp_path, clean_env):
    kid = generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    clean_env.setenv("BUILDSYS_SIGNING_KEY_FILE", str(tmp_path / "k.key"))
    assert keyid(load_private_key(None)) == kid
    clean_env.delenv("BUILDSYS_SIGNING_KEY_FILE")
    clean_env.setenv("BUILDSYS_SIGNING_KEY", (tmp_path / "k.key").read_text())
    assert keyid(load_private_key()) == kid
    clean_env.setenv("BUILDSYS_SIGNING_KEY_FILE", str(tmp_path / "k.key"))
    with pytest.raises(SigningKeyError, match="both"):
        load_private_key()


def test_explicit_path_wins_over_environment(tmp_path, clean_env):
    kid = generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    clean_env.setenv("BUILDSYS_SIGNING_KEY", "garbage")
    assert keyid(load_private_key(tmp_path / "k.key")) == kid


def test_no_key_anywhere(clean_env):
    with pytest.raises(SigningKeyError, match="no signing key given") as err:
        load_private_key()
    assert "BUILDSYS_SIGNING_KEY_FILE" in err.value.hint


def test_passphrase(tmp_path, clean_env):
    kid = generate_keypair(tmp_path / "k.key", tmp_path / "k.pub", password=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    with pytest.raises(SigningKeyError, match="encrypted and no passphrase"):
        load_private_key(tmp_path / "k.key")
    clean_env.setenv("BUILDSYS_SIGNING_KEY_PASSWORD", "correct horse")
    assert keyid(load_private_key(tmp_path / "k.key")) == kid
    assert keyid(load_private_key(tmp_path / "k.key", password=b"correct horse")) == kid
    clean_env.setenv("BUILDSYS_SIGNING_KEY_PASSWORD", "battery staple")
    with pytest.raises(SigningKeyError, match="wrong passphrase") as err:
        load_private_key(tmp_path / "k.key")
    assert "battery staple" not in str(err.value) and "battery staple" not in repr(err.value)
    generate_keypair(tmp_path / "plain.key", tmp_path / "plain.pub")
    with pytest.raises(SigningKeyError, match="not encrypted"):
        load_private_key(tmp_path / "plain.key")


def _corrupt_pem(pem: str) -> str:
    """Same PEM frame, a body that no longer decodes to a key."""
    lines = pem.strip().splitlines()
    body = base64.b64encode(b"\x30\x2e" + bytes(range(7, 53))).decode()
    return "\n".join([lines[0], body, lines[-1]]) + "\n"


def test_secrets_never_in_messages(tmp_path, clean_env, caplog):
    caplog.set_level(logging.DEBUG)
    # built at run time: a traceback quotes this file's source lines, which must not hold them
    passphrase, wrong = "s3cret-" + "pass", "wrong-" + "s3cret"
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub", password=passphrase.encode())
    generate_keypair(tmp_path / "plain.key", tmp_path / "plain.pub")
    pem, plain = (tmp_path / "k.key").read_text(), (tmp_path / "plain.key").read_text()
    bad, bad_plain = _corrupt_pem(pem), _corrupt_pem(plain)
    (tmp_path / "bad.key").write_text(bad_plain)
    clean_env.setenv("BUILDSYS_SIGNING_KEY", bad_plain)
    errors = []
    for attempt in (lambda: load_private_key(),  # malformed key text from the environment
                    lambda: load_private_key(tmp_path / "bad.key"),  # the same from a file
                    lambda: load_private_key(tmp_path / "k.key", password=wrong.encode()),
                    lambda: load_private_key(tmp_path / "plain.key", password=passphrase.encode())):
        with pytest.raises(SigningKeyError) as err:
            attempt()
        errors.append(err.value)
    clean_env.setenv("BUILDSYS_SIGNING_KEY", bad)  # malformed encrypted key, passphrase from the environment
    clean_env.setenv("BUILDSYS_SIGNING_KEY_PASSWORD", passphrase)
    with pytest.raises(SigningKeyError) as err:
        load_private_key()
    errors.append(err.value)
    secrets = [bad, bad_plain, plain, pem] + [t.splitlines()[1] for t in (bad, bad_plain, pem, plain)]
    secrets += [passphrase, wrong]
    for error in errors:
        shown = "".join(traceback.format_exception(error))  # with any chained library exception
        for text in (str(error), repr(error), error.where or "", error.hint or "", shown):
            assert not [s for s in secrets if s in text], text
        assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert "$BUILDSYS_SIGNING_KEY" in str(errors[0])  # names the variable, not its value
    assert not [s for s in secrets if s in caplog.text]


def test_key_file_problems(tmp_path, clean_env):
    with pytest.raises(SigningKeyError, match="key file not found") as err:
        load_private_key(tmp_path / "missing.key")
    assert err.value.where == str(tmp_path / "missing.key")
    (tmp_path / "text.key").write_text("hello")
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        load_private_key(tmp_path / "text.key")
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        load_public_key(tmp_path / "k.key")


def test_rejects_keys_that_are_not_ed25519(tmp_path, clean_env):
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.key").write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
    public_pem = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "ec.pub").write_bytes(public_pem)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_private_key(tmp_path / "ec.key")
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_public_key(tmp_path / "ec.pub")
    with pytest.raises(SigningKeyError, match="Ed25519 private key"):
        sign_statement({"_type": "x"}, key)


def test_errors_share_the_root():
    assert issubclass(SigningKeyError, BuildsysError) and issubclass(VerifyError, BuildsysError)


# -- without cryptography -----------------------------------------------------------------------


@pytest.fixture
def no_cryptography(monkeypatch):
    """Make every ``import cryptography...`` fail, as on a host without the package."""
    for name in [n for n in sys.modules if n == "cryptography" or n.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)


def test_backend_unavailable_without_cryptography(record, tmp_path, no_cryptography):
    attempts = [lambda: generate_keypair(tmp_path / "k.key", tmp_path / "k.pub"),
                lambda: load_public_key(tmp_path / "k.pub"),
                lambda: sign_statement(make_statement(record), object()),
                lambda: verify_envelope({}, object())]
    for attempt in attempts:
        with pytest.raises(BackendUnavailable, match="signing needs the 'cryptography' package") as err:
            attempt()
        assert err.value.hint == "pip install 'buildsys[sign]'"
    # digests and statements are plain hashing and need no backend
    assert make_statement(record)["subject"][0]["digest"]["sha256"] == artifact_digest(record)[7:]


def test_importing_provenance_does_not_import_cryptography():
    code = "import sys, buildsys.provenance, buildsys.signing; print('cryptography' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
