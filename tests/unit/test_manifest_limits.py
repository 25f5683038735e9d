"""The bounds on manifest input: what is just inside each is accepted, just past it refused."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from buildsys import yamlpos
from buildsys.errors import ManifestError


def yaml_error(text: str) -> str:
    with pytest.raises(ManifestError) as info:
        yamlpos.load(text, "f.yaml")
    return str(info.value)


# -- YAML ---------------------------------------------------------------------------------------


def test_alias_bomb_is_refused_in_milliseconds_without_expanding():
    bomb = "".join(f"{n}: &{n} [{','.join([p] * 9)}]\n"
                   for n, p in zip("abcdefghi", ['"lol"'] + [f"*{c}" for c in "abcdefgh"]))
    assert len(bomb) < 350
    tracemalloc.start()
    started = time.perf_counter()
    message = yaml_error(bomb)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "more than 100000 keys and values" in message and message.startswith("f.yaml:6:")
    assert elapsed < 0.5 and peak < 20 << 20, (elapsed, peak)


def test_nodes_are_counted_through_aliases_up_to_the_bound():
    # root, 'a', its list, 'b', its list: 5 nodes; the list of n items is n + 1; m aliases repeat it
    def doc(n, m):
        return f"a: &a [{', '.join(['0'] * n)}]\nb: [{', '.join(['*a'] * m)}]\n"

    assert 5 + 1922 + 51 * 1923 == yamlpos.MAX_NODES
    data, _ = yamlpos.load(doc(1922, 51), "f.yaml")
    assert len(data["b"]) == 51 and len(data["b"][0]) == 1922
    assert "more than 100000" in yaml_error(doc(1923, 51))


def test_depth_bound_is_exact_and_counts_through_aliases():
    assert yamlpos.load("x: " + "[" * 63 + "]" * 63, "f.yaml")  # the root mapping is level 1
    assert "nesting deeper than 64" in yaml_error("x: " + "[" * 64 + "]" * 64)
    assert yamlpos.load("a: &a " + "[" * 32 + "]" * 32 + "\nb: " + "[" * 31 + "*a" + "]" * 31, "f.yaml")
    assert "nesting deeper than 64" in yaml_error("a: &a " + "[" * 32 + "]" * 32 + "\nb: " + "[" * 32 + "*a" + "]" * 32)


def test_very_deep_flow_nesting_is_refused_quickly():
    started = time.perf_counter()
    assert "f.yaml:1:68: nesting deeper than 64" in yaml_error("x: " + "[" * 1_000_000)
    assert time.perf_counter() - started < 0.2


def test_alias_count_bound():
    aliases = lambda n: "a: &a 1\nb: [" + ", ".join(["*a"] * n) + "]\n"  # noqa: E731
    assert len(yamlpos.load(aliases(100), "f.yaml")[0]["b"]) == 100
    assert "more than 100 aliases" in yaml_error(aliases(101))


def test_merge_keys_and_tagged_keys_are_refused_with_their_position():
    assert yaml_error("a: &b {x: 1}\nc:\n  <<: *b\n") == (
        "f.yaml:3:3: merge keys ('<<') are not supported (repeat the keys in this mapping instead)")
    assert yamlpos.load("'<<': 1", "f.yaml")[0] == {"<<": 1}  # a quoted '<<' is an ordinary key
    assert yaml_error("? [a, b]\n: 1\n").startswith("f.yaml:1:3: a mapping key must be a plain value")
    assert yaml_error("!!binary a: 1\n").startswith("f.yaml:1:1: cannot read 'a' as !!binary")


def test_python_tags_never_run_code(tmp_path):
    target = tmp_path / "pwned"
    for text in (f"x: !!python/object/apply:os.system ['touch {target}']\n",
                 f"x: !!python/object/apply:os.system {{args: ['touch {target}']}}\n",
                 "x: !!python/name:os.system\n"):
        try:
            yamlpos.load(text, "f.yaml")
        except ManifestError as exc:
            assert str(exc).startswith("f.yaml:1:4:"), exc
    assert not target.exists()


@pytest.mark.parametrize("value,tag", [("!!int abc", "!!int"), ("!!float x", "!!float"),
                                       ("!!timestamp nope", "!!timestamp"), ("!!bool maybe", "!!bool"),
                                       ("!!map x", "!!map"), ("!mine x", "!mine")])
def test_bad_tagged_scalar_names_the_tag(value, tag):
    assert yaml_error(f"k: {value}\n").startswith(f"f.yaml:1:4: cannot read ") and tag in yaml_error(f"k: {value}\n")


def test_duplicate_keys_still_refused_at_the_second():
    assert yaml_error("a: 1\nb: 2\na: 3\n").startswith("f.yaml:3:1: duplicate key 'a'")
