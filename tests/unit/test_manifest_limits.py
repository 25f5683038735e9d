"""The bounds on manifest input: what is just inside each is accepted, just past it refused."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from buildsys import lock, manifest, manifest_checks, yamlpos
from buildsys.errors import LockMismatch, ManifestError, ManifestErrors

BASE = """\
schema: 1
name: fuzz
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets: {a: {format: text}}
"""


def write(tmp_path, text: str | bytes):
    (tmp_path / "model.txt").write_text("hi\n")
    path = tmp_path / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_of(tmp_path, text) -> str:
    with pytest.raises((ManifestError, ManifestErrors)) as info:
        manifest.load(write(tmp_path, text))
    return str(info.value)


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
    assert yaml_error(f"k: {value}\n").startswith("f.yaml:1:4: cannot read ") and tag in yaml_error(f"k: {value}\n")


def test_duplicate_keys_still_refused_at_the_second():
    assert yaml_error("a: 1\nb: 2\na: 3\n").startswith("f.yaml:3:1: duplicate key 'a'")


# -- the file ---------------------------------------------------------------------------------


def test_file_size_bound_is_checked_before_parsing(tmp_path):
    padding = manifest_checks.MAX_MANIFEST_BYTES - len(BASE) - 2
    at_bound = BASE + "#" + "x" * padding + "\n"
    assert len(at_bound.encode()) == manifest_checks.MAX_MANIFEST_BYTES
    assert manifest.load(write(tmp_path, at_bound)).name == "fuzz"
    # one byte more, of input that parsing would refuse differently (a megabyte of '[')
    message = error_of(tmp_path, "[" * (manifest_checks.MAX_MANIFEST_BYTES + 1))
    assert message.endswith("m.yaml:1:1: the manifest is larger than 1 MiB "
                            "(a manifest names files and settings; keep data in the files it names)")


def test_not_utf8_points_at_the_byte(tmp_path):
    message = error_of(tmp_path, "schema: 1\nname: é\xff".encode("latin-1").replace(b"\xe9", "é".encode()))
    assert "m.yaml:2:8: the manifest is not UTF-8 text: byte 0xff" in message and "save the file as UTF-8" in message


def test_crlf_manifest_loads_the_same(tmp_path):
    lf = manifest.load(write(tmp_path, BASE + "description: |\n  two\n  lines\n"))
    crlf = manifest.load(write(tmp_path, (BASE + "description: |\n  two\n  lines\n").replace("\n", "\r\n").encode()))
    assert crlf == lf and crlf.description == "two\nlines\n" and crlf._positions == lf._positions


# -- names, targets, paths --------------------------------------------------------------------


@pytest.mark.parametrize("old,new,limit", [
    ("name: fuzz", "name: {}", manifest_checks.MAX_NAME),
    ("version: 1.0.0", "version: {}", manifest_checks.MAX_VERSION),
    ("{a: {", "{{{}: {{", manifest_checks.MAX_TARGET_NAME),
])
def test_name_length_bounds(tmp_path, old, new, limit):
    assert manifest.load(write(tmp_path, BASE.replace(old, new.format("n" * limit))))
    message = error_of(tmp_path, BASE.replace(old, new.format("n" * (limit + 1))))
    assert f"is {limit + 1} characters; at most {limit}" in message


def test_long_target_name_error_points_at_the_key(tmp_path):
    message = error_of(tmp_path, BASE.replace("targets: {a: {format: text}}", "targets:\n  " + "t" * 65 + ": {format: text}"))
    assert "m.yaml:6:3: targets.ttttttttttttttttttttttttttttttttttttt...: target name is 65" in message


def test_largest_file_name_fits(tmp_path):
    from buildsys.artifacts import wheel_name
    from buildsys.hardware import parse

    widest = parse(["sm70", "sm75", "sm80", "sm86", "sm89", "sm90", "sm100", "sm120"]).filename_part
    assert len(widest) <= manifest_checks.MAX_HARDWARE_TAG
    name = wheel_name("n" * manifest_checks.MAX_NAME, "1" * manifest_checks.MAX_VERSION, "xla.executable",
                      "bf16", "ort1.20-percentile", widest, ".jax_exported")
    assert len(name.encode()) < 255 - 40, len(name)


def test_hardware_tag_bound(tmp_path):
    known = "[sm70, sm75, sm80, sm86, sm89, sm90, sm100, sm120]"
    assert manifest.load(write(tmp_path, BASE.replace("format: text}", f"format: text, hardware: {known}}}")))
    message = error_of(tmp_path, BASE.replace("format: text}", "format: text, hardware: [" +
                                              ", ".join(f"sm{i}" for i in range(10, 30)) + "]}"))
    assert "m.yaml:5:" in message and "hardware tag is 104 characters; at most 48" in message


def test_target_count_bound(tmp_path):
    def targets(n):
        return BASE.replace("targets: {a: {format: text}}", "targets:\n" + "".join(
            f"  t{i}: {{format: text}}\n" for i in range(n)))

    assert len(manifest.load(write(tmp_path, targets(manifest_checks.MAX_TARGETS))).targets) == 1000
    assert "m.yaml:6:3: targets: has 1001 entries; a manifest may have at most 1000 targets" in error_of(
        tmp_path, targets(1001))


@pytest.mark.parametrize("value,problem", [
    ("x" * 251 + ".txt", "does not exist"),                      # 255 bytes: allowed, and missing
    ("x" * 252 + ".txt", "has a name of 256 bytes"),
    ("é" * 126 + ".txt", "has a name of 256 bytes"),             # bytes, not characters
    ("/".join(["d" * 99] * 10) + "/" + "f" * 20 + ".txt", "does not exist"),   # 1,024 bytes
    ("/".join(["d" * 99] * 10) + "/" + "f" * 21 + ".txt", "is 1025 bytes long"),
    ("model.txt\x7f", "control character '\\x7f'"),
    ("model\u0085.txt", "control character '\\x85'"),
])
def test_entrypoint_path_bounds(tmp_path, value, problem):
    quoted = value.replace("\x7f", "\\x7f").replace("\u0085", "\\x85")
    message = error_of(tmp_path, BASE.replace("entrypoint: model.txt", f'entrypoint: "{quoted}"'))
    assert "m.yaml:4:38: model.entrypoint" in message and problem in message


def test_entrypoint_that_is_a_file_or_importable_name(tmp_path):
    (tmp_path / "plain-file").write_text("hi\n")
    assert manifest.load(write(tmp_path, BASE.replace("entrypoint: model.txt", "entrypoint: plain-file")))
    assert manifest.load(write(tmp_path, BASE.replace("entrypoint: model.txt", "entrypoint: pkg.mod:build")))
    assert "neither a file beside the manifest nor an importable" in error_of(
        tmp_path, BASE.replace("entrypoint: model.txt", "entrypoint: 'no such file'"))


def test_calibration_data_path_bound(tmp_path):
    message = error_of(tmp_path, BASE + "calibration: {data: '" + "c" * 300 + "'}\n")
    assert "m.yaml:6:21: calibration.data: has a name of 300 bytes" in message


# -- the lockfile -----------------------------------------------------------------------------


def test_binary_lockfile_is_a_lock_mismatch_that_says_what_to_do(tmp_path):
    path = tmp_path / "m.lock"
    path.write_bytes(b"schema = 1\n\xff\xfe")
    with pytest.raises(LockMismatch) as info:
        lock.read(path)
    assert str(info.value) == (f"lockfile {path} is not UTF-8 text (byte 11): it is damaged or not a lockfile "
                               "(delete it and run 'buildsys build' to write a new one)")
    path.write_text("schema = 1\n")
    assert lock.read(path) == {"schema": 1} and lock.read(tmp_path / "none.lock") is None
