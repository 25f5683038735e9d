"""Integrity holes found by fault and tamper runs, each shut and kept shut, through the real CLI:
artifact.json covered by one digest (lock, verify, publish, build, registries), a cache that
re-hashes what it serves, pinned pulls, and signed provenance with local keys."""

from __future__ import annotations

import json
import os
import shutil
import tomllib

import pytest

from buildsys import artifact_digest
from buildsys.hashing import sha256_file


TARGETS = ("-t", "normalized", "-t", "native")  # two of the hello manifest's targets, built


@pytest.fixture
def built(hello):
    hello.cli("build", "manifest.yaml", *TARGETS).assert_ok()
    return hello


def directory(project, target="normalized"):
    return project.target_dir("hello", "1.0.0", target)


def record(project, target="normalized") -> dict:
    return json.loads((directory(project, target) / "artifact.json").read_text())


def retag(project, target="normalized", **changes) -> None:
    """A consistent edit of artifact.json alone: every file still matches its sha256."""
    path = directory(project, target) / "artifact.json"
    path.write_text(json.dumps(dict(record(project, target), **changes), indent=2))


def lock(project) -> dict:
    return tomllib.loads((project.root / "manifest.lock").read_text())


# -- 1. artifact.json is covered -------------------------------------------------------------------


def test_the_lock_records_each_targets_artifact_digest(built):
    locked = lock(built)
    for target in ("normalized", "native"):
        assert locked["targets"][target]["digest"] == artifact_digest(record(built, target))
    assert (locked["name"], locked["version"]) == ("hello", "1.0.0")


@pytest.mark.parametrize("change", [{"hardware": "cuda-sm90"}, {"precision": "int8"},
                                    {"validation": {"status": "passed", "samples": 99}}])
def test_a_consistent_edit_of_artifact_json_fails_verify_and_publish_and_a_build_repairs_it(built, tmp_path,
                                                                                               change):
    original = record(built)
    retag(built, **change)
    verify = built.cli("verify", "manifest.yaml")
    verify.assert_error(5, "artifact.json: digest", "edited after the build")
    publish = built.cli("publish", "manifest.yaml", "-t", "normalized", "--to", f"file:{tmp_path / 'reg'}")
    publish.assert_error(5, "does not match the lockfile")
    assert not (tmp_path / "reg").exists()
    built.cli("build", "manifest.yaml", "--locked", *TARGETS).assert_ok()
    assert record(built) == original
    built.cli("verify", "manifest.yaml").assert_ok()


def test_a_file_rewritten_together_with_its_artifact_json_is_refused(built, tmp_path):
    target = directory(built)
    rec = record(built)
    primary = target / rec["files"][0]["name"]
    primary.write_text("forged content\n")
    rec["files"][0] |= {"sha256": sha256_file(primary), "size": primary.stat().st_size}
    (target / "artifact.json").write_text(json.dumps(rec))
    built.cli("verify", "manifest.yaml").assert_error(5, "sha256")
    built.cli("publish", "manifest.yaml", "-t", "normalized", "--to", f"file:{tmp_path / 'reg'}").assert_error(5)
    assert not (tmp_path / "reg").exists()


# -- 2. the cache re-hashes what it serves ----------------------------------------------------------


def blobs_of(project, target="normalized") -> list:
    return [project.cache / "cas" / f["sha256"][:2] / f["sha256"] for f in record(project, target)["files"]]


def damage(path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01  # same size
    path.write_bytes(bytes(data))


def test_a_damaged_blob_is_evicted_rebuilt_and_said_once_even_under_locked(built):
    [blob] = blobs_of(built)
    good = sha256_file(blob)
    damage(blob)
    result = built.cli("build", "manifest.yaml", "--locked", *TARGETS).assert_ok()
    assert result.stderr.count("damaged copy") == 1, result.stderr
    assert sha256_file(blob) == good == blob.name
    again = built.cli("build", "manifest.yaml", "--locked", *TARGETS).assert_ok()
    assert "damaged" not in again.stderr
    built.cli("verify", "manifest.yaml").assert_ok()


def test_a_rebuild_after_deleting_the_artifacts_never_copies_a_damaged_blob(built):
    [blob] = blobs_of(built)
    damage(blob)
    shutil.rmtree(built.out / "hello")
    built.cli("build", "manifest.yaml", *TARGETS).assert_ok()
    target = directory(built)
    [f] = record(built)["files"]
    assert sha256_file(target / f["name"]) == f["sha256"] == blob.name
    built.cli("verify", "manifest.yaml").assert_ok()


def test_a_same_size_artifact_edit_with_its_mtime_kept_is_repaired(built):
    [f] = record(built)["files"]
    path = directory(built) / f["name"]
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    built.cli("build", "manifest.yaml", *TARGETS).assert_ok()
    assert sha256_file(path) == f["sha256"]


# -- pinned pulls ------------------------------------------------------------------------------------


@pytest.fixture
def published(built, tmp_path):
    url = f"file:{tmp_path / 'reg'}"
    built.cli("publish", "manifest.yaml", *TARGETS, "--to", url).assert_ok()
    return built, url


def test_list_shows_the_digest_and_pull_can_pin_it(published, tmp_path):
    project, url = published
    digest = artifact_digest(record(project))
    assert digest in project.cli("list", "--from", url).assert_ok().stdout
    ok = project.cli("pull", "hello", "1.0.0", "normalized", "--from", url, "--to", str(tmp_path / "a"),
                     "--digest", digest).assert_ok()
    assert digest in ok.stdout
    wrong = project.cli("pull", "hello", "1.0.0", "normalized", "--from", url, "--to", str(tmp_path / "b"),
                        "--digest", "sha256:" + "0" * 64)
    wrong.assert_error(5, "pinned to digest sha256:0000")
    assert not (tmp_path / "b").exists()
    project.cli("pull", "hello", "1.0.0", "normalized", "--from", url, "--to", str(tmp_path / "c"),
                "--digest", "sha256:abc").assert_error(2, "64 hex digits")


def test_pull_can_pin_what_a_lockfile_recorded(published, tmp_path):
    project, url = published
    lock_file = project.root / "manifest.lock"
    project.cli("pull", "hello", "1.0.0", "native", "--from", url, "--to", str(tmp_path / "a"),
                "--lock", str(lock_file)).assert_ok()
    text = lock_file.read_text()
    locked = lock(project)["targets"]["native"]["digest"]
    lock_file.write_text(text.replace(locked, "sha256:" + "1" * 64))
    project.cli("pull", "hello", "1.0.0", "native", "--from", url, "--to", str(tmp_path / "b"),
                "--lock", str(lock_file)).assert_error(5, "pinned")
    assert not (tmp_path / "b").exists()
    project.cli("pull", "other", "1.0.0", "native", "--from", url, "--to", str(tmp_path / "c"),
                "--lock", str(lock_file)).assert_error(4, "is the lock of hello 1.0.0")


# -- signed provenance -------------------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path, buildsys_project):
    private, public = tmp_path / "keys" / "signer.pem", tmp_path / "keys" / "signer.pub"
    private.parent.mkdir()
    buildsys_project.cli("keygen", "--private", str(private), "--public", str(public)).assert_ok()
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    return private, public


def test_every_build_writes_an_unsigned_statement_about_its_artifact(built):
    envelope = json.loads((directory(built) / "provenance.json").read_text())
    assert envelope["signatures"] == [] and envelope["payloadType"] == "application/vnd.in-toto+json"
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    [subject] = statement["subject"]
    assert subject == {"name": "hello/1.0.0/normalized", "digest": {"sha256": artifact_digest(record(built))[7:]}}
    names = [d["name"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]]
    assert "manifest.lock#normalized" in names and record(built)["files"][0]["name"] in names


def test_sign_then_verify_with_the_public_key_and_catch_a_changed_artifact(built, keys, tmp_path):
    private, public = keys
    built.cli("verify", "manifest.yaml", "--key", str(public)).assert_error(5, "no signature by key")
    signed = built.cli("sign", "manifest.yaml", "--key", str(private)).assert_ok()
    assert signed.stdout.count("signed ") == 2 and private.read_text() not in signed.stdout + signed.stderr
    built.cli("verify", "manifest.yaml", "--key", str(public)).assert_ok()
    other_private, other_public = tmp_path / "o.pem", tmp_path / "o.pub"
    built.cli("keygen", "--private", str(other_private), "--public", str(other_public)).assert_ok()
    built.cli("verify", "manifest.yaml", "--key", str(other_public)).assert_error(5, "no signature by key")
    retag(built, hardware="cuda-sm90")
    built.cli("sign", "manifest.yaml", "--key", str(private)).assert_error(5, "not signed")


def test_a_key_from_the_environment_signs_and_is_never_written(built, keys):
    private, public = keys
    pem = private.read_text()
    result = built.cli("sign", "manifest.yaml", "-t", "normalized", env={"BUILDSYS_SIGNING_KEY": pem}).assert_ok()
    assert "signed normalized" in result.stdout
    written = [p.read_text(errors="replace") for p in built.root.rglob("*") if p.is_file()]
    assert not any("PRIVATE KEY" in text for text in written)
    built.cli("sign", "manifest.yaml", env={"BUILDSYS_SIGNING_KEY": "", "BUILDSYS_SIGNING_KEY_FILE": ""}) \
        .assert_error(2, "key")


def test_publish_sign_then_pull_key_checks_the_signature_before_anything_appears(built, keys, tmp_path):
    private, public = keys
    url = f"file:{tmp_path / 'reg'}"
    built.cli("publish", "manifest.yaml", *TARGETS, "--to", url, "--sign", "--key", str(private)).assert_ok()
    got = built.cli("pull", "hello", "1.0.0", "normalized", "--from", url, "--to", str(tmp_path / "got"),
                    "--key", str(public)).assert_ok()
    assert "provenance signed by that key" in got.stdout
    assert (tmp_path / "got" / "normalized" / "provenance.json").is_file()
    stored = tmp_path / "reg" / "hello" / "1.0.0" / "normalized" / "provenance.json"
    envelope = json.loads(stored.read_text())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][::-1]
    stored.write_text(json.dumps(envelope))
    bad = built.cli("pull", "hello", "1.0.0", "normalized", "--from", url, "--to", str(tmp_path / "bad"),
                    "--key", str(public))
    bad.assert_error(5)
    assert not (tmp_path / "bad").exists()
