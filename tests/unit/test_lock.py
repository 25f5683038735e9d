"""The lockfile: entries from a graph and a settled build, the action key derived from the
record the lock writes, merging, what --locked compares, reading and writing."""

from __future__ import annotations

import pytest
from graphs import graph, settle

from buildsys import lock
from buildsys.errors import LockMismatch
from buildsys.hashing import canonical, sha256_text

EDGES = {"source:x": (), "a#1": ("source:x",), "b#1": ("a#1",), "c#1": ("a#1",)}
RECORDS = {"tb": {"kind": "b.kind", "format": "b", "precision": "fp32", "hardware": "any"},
           "tc": {"kind": "c.kind", "format": "c", "precision": "fp32", "hardware": "any"}}


def data(g, settled, records=RECORDS):
    complete = {t: dict(r, files=[{"name": f"{t}.bin", "sha256": "a" * 64, "size": 7, "role": "primary"}])
                for t, r in records.items()}
    return lock.lock_data(g, settled, complete, name="m", version="1", manifest="m.yaml", plugins={"p": "1"},
                          tools={t: {f"tool-{t}": "1"} for t in records}, buildsys="0.1")


def test_every_node_the_built_targets_need_with_its_action_and_key():
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"})
    settled = settle(g)
    locked = data(g, settled)
    assert list(locked["nodes"]) == ["a#1", "b#1", "c#1", "source:x"]
    entry = locked["nodes"]["b#1"]
    action = settled.actions["b#1"]
    assert {k: entry[k] for k in action.to_json()} == action.to_json()  # the lock writes the action...
    assert entry["action_key"] == sha256_text(canonical(action.to_json()))  # ...and the key hashes exactly that
    assert entry["inputs"] == [settled.digests["a#1"]] and entry["tools"] == {"tool": "1.0"}
    assert locked["nodes"]["source:x"] == {"stage": "source", "kind": "source.kind", "recipe": "recipe-source:x",
                                           "digest": "d-source:x", "deterministic": True}
    assert locked["targets"]["tb"]["nodes"] == ["source:x", "a#1", "b#1"]
    assert locked["targets"]["tb"]["files"] == [{"name": "tb.bin", "sha256": "a" * 64, "size": 7}]
    assert locked["targets"]["tb"]["digest"].startswith("sha256:") and (locked["name"], locked["version"]) == ("m", "1")


def test_locked_ignores_the_artifact_digest_which_verify_checks():
    """artifact.json records where and how long a target was built: --locked on another
    machine must not fail for that (verify and pull --lock check the digest instead)."""
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"})
    old, new = data(g, settle(g)), data(g, settle(g))
    new["targets"]["tb"]["digest"] = "sha256:" + "9" * 64
    assert lock.diff(old, new, "m.lock") == []


def test_a_target_not_built_keeps_its_old_entry_and_nodes():
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"})
    old = data(g, settle(g))
    new = data(g, settle(g), {"tb": RECORDS["tb"]})
    assert "tc" not in new["targets"] and "c#1" not in new["nodes"]
    merged = lock.merge(old, new, ["tb"])
    assert merged["targets"]["tc"] == old["targets"]["tc"] and merged["nodes"]["c#1"] == old["nodes"]["c#1"]
    assert lock.merge(None, new, ["tb"]) is new


def test_locked_compares_recipes_not_bytes_downstream_of_a_nondeterministic_stage():
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"}, deterministic=False)
    old, new = data(g, settle(g)), data(g, settle(g))
    new["nodes"]["b#1"] = dict(new["nodes"]["b#1"], digest="other", outputs=[])
    assert lock.diff(old, new, "m.lock") == []
    new["nodes"]["b#1"]["options"] = {"o": "changed"}
    assert any("changed" in line for line in lock.diff(old, new, "m.lock"))


def test_a_deterministic_node_with_other_bytes_is_a_difference():
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"})
    old, new = data(g, settle(g)), data(g, settle(g))
    new["nodes"]["b#1"] = dict(new["nodes"]["b#1"], digest="other")
    assert any("other" in line for line in lock.diff(old, new, "m.lock"))


def test_write_is_atomic_and_only_when_it_changes(tmp_path):
    g = graph(EDGES, {"tb": "b#1"})
    locked = data(g, settle(g), {"tb": RECORDS["tb"]})
    path = lock.lock_path(tmp_path / "m.yaml")
    assert path.name == "m.lock"
    assert lock.write(path, locked) is True and lock.write(path, locked) is False
    assert lock.read(path) == lock.read(path) and lock.read(path)["nodes"]["b#1"]["action_key"] == \
        locked["nodes"]["b#1"]["action_key"]
    assert path.read_text().startswith("# Written by 'buildsys build'")
    assert [p.name for p in tmp_path.iterdir()] == ["m.lock"]


def test_an_unreadable_lock_says_how_to_recover(tmp_path):
    path = tmp_path / "m.lock"
    assert lock.read(path) is None
    path.write_text("schema = 99\n")
    with pytest.raises(LockMismatch, match="schema 99"):
        lock.read(path)
    path.write_text("this is = = not toml")
    with pytest.raises(LockMismatch, match="delete it"):
        lock.read(path)


def test_tools_are_recorded_per_target_and_a_kept_target_keeps_its_own():
    g = graph(EDGES, {"tb": "b#1", "tc": "c#1"})
    old = data(g, settle(g))
    assert old["targets"]["tb"]["tools"] == {"tool-tb": "1"} and old["tools"] == {"tool-tb": "1", "tool-tc": "1"}
    new = data(g, settle(g), {"tb": RECORDS["tb"]})
    new["targets"]["tb"]["tools"] = {"tool-tb": "2"}  # tb's plugin upgraded; tc not rebuilt
    merged = lock.merge(old, new, ["tb"])
    assert merged["tools"] == {"tool-tb": "2", "tool-tc": "1"}
    assert any("tool-tb" in line for line in lock.diff(old, merged, "m.lock"))
    unrelated = dict(old, tools=dict(old["tools"], jax="0.10"))  # a plugin no target uses: no difference
    assert lock.diff(unrelated, old, "m.lock") == []
