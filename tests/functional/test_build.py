"""End to end through the real CLI: build, rebuild for free, artifacts, lock, verify."""

from __future__ import annotations

import json
import tomllib

from buildsys.hashing import sha256_file

SIX = ["normalized", "lowercase", "ascii", "stats", "stamped", "native"]


def test_cold_build_then_noop(hello):
    first = hello.cli("build", "manifest.yaml", "-j", "2").assert_ok()
    first.assert_nodes(built=["text.normalize", "text.normalize", "text.ascii", "text.wordcount",
                              "text.stamp", "text.compile"], cached=0, failed=0)
    assert first.summary["lock_changed"] is True
    again = hello.cli("build", "manifest.yaml").assert_ok()
    again.assert_nodes(built=0, cached=6)
    assert again.summary["lock_changed"] is False


def test_artifact_layout_and_record(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    native = hello.target_dir("hello", "1.0.0", "native")
    record = json.loads((native / "artifact.json").read_text())
    [primary] = [f for f in record["files"] if f["role"] == "primary"]
    assert primary["name"].startswith("hello-1.0.0-text.bin-fp32-txtc1-cpu_x86_64")
    assert sha256_file(native / primary["name"]) == primary["sha256"]
    assert record["kind"] == "text.bin" and record["hardware"].startswith("cpu-x86_64")
    assert [c["stage"] for c in record["chain"]] == ["source", "text.normalize", "text.compile"]
    assert record["host"]["arch"] and record["buildsys"]
    ascii_dir = hello.target_dir("hello", "1.0.0", "ascii")
    assert (ascii_dir / "hello-1.0.0-text-int8-any.txt").read_text().startswith("Hello, world.\nBonjour le monde ? ")


def test_lockfile_records_nodes(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    lock = tomllib.loads(hello.lock().read_text())
    assert lock["schema"] == 1 and set(lock["targets"]) == set(SIX)
    stamp = lock["nodes"][lock["targets"]["stamped"]["node"]]
    assert stamp["deterministic"] is False and stamp["stage"] == "text.stamp"
    normalize = lock["nodes"][lock["targets"]["normalized"]["node"]]
    assert normalize["deterministic"] is True and len(normalize["action_key"]) == 64
    assert normalize["outputs"][0]["name"] == "text.txt"


def test_source_change_rebuilds_only_what_depends_on_it(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    hello.write("model.txt", "Something else entirely\n")
    hello.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=6, cached=0)
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text().replace(
        "native:     {format: text.bin, hardware: cpu}",
        "native:     {format: text.bin, hardware: cpu, options: {text.compile: {optimize: 3}}}"))
    hello.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=["text.compile"], cached=5)


def test_same_manifest_same_checksums_in_a_fresh_cache(hello, tmp_path):
    hello.cli("build", "manifest.yaml").assert_ok()
    first = tomllib.loads(hello.lock().read_text())
    other = {"BUILDSYS_OUT": str(tmp_path / "out2"), "BUILDSYS_CACHE_DIR": str(tmp_path / "cache2")}
    hello.cli("build", "manifest.yaml", "--locked", env=other).assert_ok().assert_nodes(built=6)
    second = tomllib.loads(hello.lock().read_text())
    for target in SIX:
        if target != "stamped":  # nondeterministic by design: compared by recipe, not bytes
            assert first["targets"][target]["files"] == second["targets"][target]["files"], target


def test_locked_fails_with_diff_when_lock_would_change(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    before = hello.lock().read_text()
    hello.write("model.txt", "changed\n")
    result = hello.cli("build", "manifest.yaml", "--locked")
    result.assert_error(4, "--locked: the lockfile would change", "manifest.lock (on disk)", "+")
    assert hello.lock().read_text() == before
    record = json.loads((hello.target_dir("hello", "1.0.0", "normalized") / "artifact.json").read_text())
    assert (hello.target_dir("hello", "1.0.0", "normalized") / record["files"][0]["name"]).read_text() != "changed\n"


def test_frozen_uses_lock_and_never_writes(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    before = hello.lock().read_text()
    hello.write("model.txt", "changed\n")  # the lock is trusted as is
    hello.cli("build", "manifest.yaml", "--frozen").assert_ok().assert_nodes(built=0, cached=6)
    assert hello.lock().read_text() == before
    normalized = hello.target_dir("hello", "1.0.0", "normalized")
    record = json.loads((normalized / "artifact.json").read_text())
    assert "Hello, world." in (normalized / record["files"][0]["name"]).read_text()


def test_frozen_without_lock_or_with_new_target(hello):
    hello.cli("build", "manifest.yaml", "--frozen").assert_error(4, "--frozen needs a lockfile")
    hello.cli("build", "manifest.yaml", "-t", "normalized").assert_ok()
    hello.cli("build", "manifest.yaml", "--frozen").assert_error(4, "lockfile lacks")


def test_target_subset_keeps_other_lock_entries(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    hello.cli("build", "manifest.yaml", "-t", "ascii").assert_ok().assert_nodes(built=0, cached=2)
    assert set(tomllib.loads(hello.lock().read_text())["targets"]) == set(SIX)


def test_verify_detects_edited_artifact(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    assert "all match" in hello.cli("verify", "manifest.yaml").assert_ok().stdout
    directory = hello.target_dir("hello", "1.0.0", "stats")
    victim = directory / json.loads((directory / "artifact.json").read_text())["files"][0]["name"]
    victim.write_text('{"words": 1000000}')
    result = hello.cli("verify", "manifest.yaml")
    result.assert_error(5, "target 'stats'", victim.name, "sha256")
    # a rebuild notices the edit (mtime newer than artifact.json) and restores the file
    hello.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=0)
    hello.cli("verify", "manifest.yaml").assert_ok()


def test_verify_detects_damaged_cache_blob(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    blob = next((hello.cache / "cas").glob("*/*"))
    blob.chmod(0o644)
    blob.write_bytes(b"rot")
    hello.cli("verify", "manifest.yaml").assert_error(5, "is damaged")


def test_keep_going_lists_failures_and_skips(hello):
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text().replace(
        "stats:      {format: text.stats}", "stats:      {format: text.stats, options: {text.wordcount: {fail: true}}}"))
    result = hello.cli("build", "manifest.yaml", "--keep-going")
    result.assert_error(1, "1 node(s) failed", "text.wordcount", "fail: true", "targets: stats")
    result.assert_nodes(failed=["text.wordcount"], built=5)
    assert not hello.target_dir("hello", "1.0.0", "stats").exists()
    assert hello.target_dir("hello", "1.0.0", "ascii").exists()


def test_backend_unavailable_names_install(hello):
    hello.write("manifest.yaml", (hello.root / "manifest.yaml").read_text() + "  spell: {format: text.spelling}\n")
    result = hello.cli("build", "manifest.yaml", "-t", "spell")
    result.assert_error(1, "pyspellchecker", "pip install pyspellchecker")


def test_gc_keeps_referenced_and_drops_the_rest(hello):
    hello.cli("build", "manifest.yaml").assert_ok()
    hello.write("model.txt", "new text\n")
    hello.cli("build", "manifest.yaml").assert_ok()
    entries_before = len(list((hello.cache / "ac").glob("*/*.json")))
    dry = hello.cli("gc", "manifest.yaml", "--dry-run").assert_ok()
    assert "would remove 6 entries" in dry.stdout
    assert len(list((hello.cache / "ac").glob("*/*.json"))) == entries_before
    hello.cli("gc", "manifest.yaml").assert_ok()
    assert len(list((hello.cache / "ac").glob("*/*.json"))) == entries_before - 6
    hello.cli("build", "manifest.yaml").assert_ok().assert_nodes(built=0, cached=6)
    hello.cli("verify", "manifest.yaml").assert_ok()
