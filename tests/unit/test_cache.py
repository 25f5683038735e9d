"""The store: atomic commit, lookups, digests, gc, and the source-file digest memo."""

from __future__ import annotations

import os

from buildsys.cache import Action, Store
from buildsys.hashing import sha256_file


def test_commit_lookup_and_materialize(tmp_path):
    store = Store(tmp_path / "cache")
    work = store.workdir("stage")
    (work / "a.txt").write_text("alpha")
    (work / "sub").mkdir()
    (work / "sub" / "b.bin").write_bytes(b"\x00\x01")
    entry = store.commit("k" * 64, work, {"primary": "a.txt"}, 1.5)
    assert not work.exists()
    again = store.lookup("k" * 64)
    assert again.files == entry.files and again.meta == {"primary": "a.txt"} and again.digest == entry.digest
    out = tmp_path / "out"
    records = store.materialize(entry, out, {"a.txt": "renamed.txt"})
    assert (out / "renamed.txt").read_text() == "alpha" and (out / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert {r.name for r in records} == {"renamed.txt", "sub/b.bin"}


def test_missing_blob_is_a_miss(tmp_path):
    store = Store(tmp_path / "cache")
    work = store.workdir("stage")
    (work / "a.txt").write_text("alpha")
    entry = store.commit("k" * 64, work, {}, 0)
    os.chmod(store.blob_path(entry.files[0].sha256), 0o644)
    store.blob_path(entry.files[0].sha256).unlink()
    assert store.lookup("k" * 64) is None


def test_action_key_changes_with_every_input():
    base = dict(stage="s", stage_version=1, options={"a": 1}, inputs=("d",), tools={"torch": "2.13"},
                hardware="any", precision="fp32")
    key = Action(**base).key
    for field, value in [("stage", "t"), ("stage_version", 2), ("options", {"a": 2}), ("inputs", ("e",)),
                         ("tools", {"torch": "2.11"}), ("hardware", "cuda-sm90"), ("precision", "fp16")]:
        assert Action(**{**base, field: value}).key != key, field
    assert Action(**{**base, "options": {"a": 1}}).key == key


def test_action_key_is_the_hash_of_the_record_the_lock_writes():
    """The lockfile writes ``Action.to_json()``; the key is derived from exactly that record."""
    from buildsys.hashing import canonical, sha256_text

    action = Action("s", 1, {"b": 2, "a": 1}, ("d1", "d2"), {"z": "1", "a": "2"}, "any", "fp32")
    assert action.key == sha256_text(canonical(action.to_json()))
    assert list(action.to_json()["tools"]) == ["a", "z"]


def test_file_digest_memo_notices_changes(tmp_path, monkeypatch):
    import time

    store = Store(tmp_path / "cache")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x" * 1000)
    assert store.file_digest(weights) == sha256_file(weights)
    assert not (store.root / "stat").exists()  # changed within the last 2 s: not remembered yet
    later = time.time_ns() + 10_000_000_000
    monkeypatch.setattr("buildsys.cache.time.time_ns", lambda: later)
    assert store.file_digest(weights) == sha256_file(weights)
    assert list((store.root / "stat").iterdir())  # remembered
    weights.write_bytes(b"y" * 1000)  # same size, new mtime
    assert store.file_digest(weights) == sha256_file(weights)
    stat = weights.stat()
    weights.write_bytes(b"z" * 1000)  # same size, mtime put back: the ctime still moves
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert store.file_digest(weights) == sha256_file(weights)


def damaged(tmp_path, key: str, text: str):
    """A store holding one entry ``key`` whose blob ("alpha") was overwritten with ``text``."""
    store = Store(tmp_path / "cache")
    work = store.workdir("s")
    (work / "a.txt").write_text("alpha")
    entry = store.commit(key, work, {}, 0)
    blob = store.blob_path(entry.files[0].sha256)
    os.chmod(blob, 0o644)
    blob.write_text(text)
    return store, entry, blob


def test_a_damaged_blob_is_evicted_on_lookup_and_said_once(tmp_path):
    store, entry, blob = damaged(tmp_path, "k" * 64, "alphA")
    assert store.lookup("k" * 64) is None and not blob.exists() and store.peek("k" * 64) is None
    assert "damaged copy of a.txt" in store.evicted["k" * 64]
    work = store.workdir("s")
    (work / "a.txt").write_text("alpha")
    assert store.commit("k" * 64, work, {}, 0).files == entry.files and store.lookup("k" * 64) is not None
    assert sha256_file(blob) == entry.files[0].sha256


def test_a_commit_replaces_a_damaged_blob_of_the_same_name(tmp_path):
    store, entry, blob = damaged(tmp_path, "k" * 64, "broken")
    work = store.workdir("s")
    (work / "a.txt").write_text("alpha")
    store.commit("j" * 64, work, {}, 0)
    assert sha256_file(blob) == entry.files[0].sha256


def test_gc_removes_unkept_and_dead_tmp(tmp_path):
    store = Store(tmp_path / "cache")
    for key, text in (("a" * 64, "keep"), ("b" * 64, "drop")):
        work = store.workdir("s")
        (work / "f").write_text(text)
        store.commit(key, work, {}, 0)
    dead = store.root / "tmp" / ".s.tmp-999999999-x"
    dead.mkdir(parents=True)
    removed = store.gc({"a" * 64})
    assert removed["entries"] == 1 and removed["blobs"] == 1 and removed["tmp"] == 1
    assert store.lookup("a" * 64) is not None and store.lookup("b" * 64) is None and not dead.exists()
