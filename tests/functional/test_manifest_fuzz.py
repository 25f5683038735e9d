"""Hostile and malformed manifests through ``buildsys plan``: exit 2 with ``file:line:col``, never 70.

The parametrised cases are regressions, each an input that once crashed (exit 70), took a
minute, or was accepted and broke the build later. The fuzz tests mutate a valid manifest and
hold every result to the same rule. All run the CLI in-process, so they stay fast. Crashes found
here that come from planning, not loading (a text entrypoint that is no file), are regressions
at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildsys import cli

BASE = """\
schema: 1
name: fuzz
version: 1.0.0
model: {framework: text, entrypoint: model.txt}
targets: {a: {format: text}}
"""

# 342 bytes that expand to 9**9 strings: refused while composing, before anything is expanded.
BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{','.join([prev] * 9)}]\n"
    for name, prev in zip("abcdefghi", ['"lol"'] + [f"*{c}" for c in "abcdefgh"]))


def swap(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A folder with model.txt; BUILDSYS_OUT and BUILDSYS_CACHE_DIR point inside it."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "model.txt").write_text("hello\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BUILDSYS_OUT", str(root / "artifacts"))
        mp.setenv("BUILDSYS_CACHE_DIR", str(root / "artifacts" / ".cache"))
        mp.chdir(root)
        yield root


def run(*argv: str) -> tuple[int, str]:
    """``buildsys ARGV`` in this process: (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue() + err.getvalue()


def plan(path) -> tuple[int, str]:
    return run("plan", str(path))


# (id, manifest text or bytes, line:col the error must point at, words the message must hold)
REGRESSIONS = [
    # bounded inputs
    ("too-large", BASE + "#" * (1 << 20) + "\n", "1:1", "larger than 1 MiB"),
    ("billion-laughs", BILLION_LAUGHS, "6:8", "alias"),
    ("many-aliases", "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n", "2:", "more than 100 aliases"),
    ("deep-10000", "x: " + "[" * 10_000 + "]" * 10_000 + "\n", "1:68", "nesting deeper than 64"),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(70)) + "  " * 70 + "v\n", "64:127", "deeper than 64"),
    ("deep-through-alias", "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
     "2:", "deeper than 64"),
    ("many-targets", swap("targets: {a: {format: text}}", "targets:\n" + "".join(
        f"  t{i}: {{format: text}}\n" for i in range(1001))), "6:3", "at most 1000 targets"),
    ("name-300", swap("name: fuzz", "name: " + "n" * 300), "2:7", "at most 64"),
    ("version-300", swap("version: 1.0.0", "version: " + "1" * 300), "3:10", "at most 40"),
    ("target-name-300", swap("{a: {", "{" + "a" * 300 + ": {"), "5:", "at most 64"),
    ("hardware-tag-long", swap("format: text}", "format: text, hardware: [" + ", ".join(
        f"sm{i}" for i in range(10, 40)) + "]}"), "5:", "hardware"),
    # exit 70 that became exit 2
    ("recursive-alias", "a: &a [*a]\n", "1:8", "refers to itself"),
    ("recursive-alias-map", "a: &a {b: *a}\n", "1:11", "refers to itself"),
    ("tagged-key-python", "? !!python/name:x\n: 1\n", "1:3", "python/name"),
    ("tagged-key-binary", "!!binary a: 1\n", "1:1", "binary"),
    ("merge-key", swap("targets: {a: {format: text}}", "base: &b {format: text}\ntargets:\n  a:\n    <<: *b"),
     "8:5", "merge keys"),
    ("bad-int-tag", swap("schema: 1", "schema: !!int abc"), "1:9", "!!int"),
    ("bad-float-tag", swap("schema: 1", "schema: !!float x"), "1:9", "!!float"),
    ("bad-timestamp-tag", swap("schema: 1", "schema: !!timestamp nope"), "1:9", "!!timestamp"),
    ("int-too-long", swap("version: 1.0.0", "version: " + "1" * 5000), "3:10", "version"),
    ("lone-surrogate", swap("name: fuzz", 'name: "\\ud800"'), "2:7", "surrogate"),
    ("entrypoint-null", swap("entrypoint: model.txt", "entrypoint: ~"), "4:38", "model.entrypoint"),
    ("entrypoint-empty", swap("entrypoint: model.txt", "entrypoint: ''"), "4:38", "empty"),
    ("entrypoint-blank", swap("entrypoint: model.txt", "entrypoint: ' '"), "4:38", "empty"),
    ("entrypoint-nul", swap("entrypoint: model.txt", 'entrypoint: "model\\0.txt"'), "4:38", "control character"),
    ("entrypoint-nul-plain", swap("entrypoint: model.txt", 'entrypoint: "mo\\0del"'), "4:38", "control character"),
    ("entrypoint-tab", swap("entrypoint: model.txt", 'entrypoint: "mo\\tdel.txt"'), "4:38", "control character"),
    ("entrypoint-300", swap("entrypoint: model.txt", "entrypoint: " + "x" * 300 + ".txt"), "4:38", "255 bytes"),
    ("entrypoint-300-plain", swap("entrypoint: model.txt", "entrypoint: " + "x" * 300), "4:38", "255 bytes"),
    ("entrypoint-2000", swap("entrypoint: model.txt", "entrypoint: " + "/".join(["d" * 99] * 20)),
     "4:38", "1024 bytes"),
    ("entrypoint-tilde", swap("entrypoint: model.txt", "entrypoint: '~'"), "4:38", "importable"),
    ("weights-300", swap("entrypoint: model.txt", "entrypoint: model.txt, weights: " + "w" * 300),
     "4:58", "255 bytes"),
    ("samples-300", swap("entrypoint: model.txt", "entrypoint: model.txt, samples: " + "s" * 300 + ".py:f"),
     "4:58", "255 bytes"),
    # messages with a location
    ("not-utf8", b"schema: 1\nname: \xff\xfe\n", "2:7", "UTF-8"),
    ("empty", "", "1:1", "empty"),
    ("only-comment", "# nothing here\n", "1:1", "empty"),
    ("control-char", swap("fuzz", "fu\x01zz"), "2:9", "control character"),
    ("nul-byte", swap("fuzz", "fu\x00zz"), "2:9", "control character"),
]


@pytest.mark.parametrize("text,where,words", [c[1:] for c in REGRESSIONS], ids=[c[0] for c in REGRESSIONS])
def test_bad_manifest_is_exit_2_with_location(project, text, where, words):
    path = project / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    started = time.perf_counter()
    code, output = plan(path)
    elapsed = time.perf_counter() - started
    assert code == 2, output
    assert f"{path}:{where}" in output, output
    assert words in output, output
    assert elapsed < 2, f"took {elapsed:.1f}s"


def test_binary_lockfile_is_lock_mismatch(project):
    path = project / "locked.yaml"
    path.write_text(BASE)
    path.with_suffix(".lock").write_bytes(b"\xff\xfe\x00 not toml")
    code, output = run("build", str(path))
    assert code == 4, output
    assert "locked.lock" in output and "delete it" in output, output


# -- fuzzing ------------------------------------------------------------------------------------

# The valid manifest as a tree of YAML fragments; mutations replace, add or drop entries.
TREE = {"schema": "1", "name": "fuzz", "version": "1.0.0",
        "model": {"framework": "text", "entrypoint": "model.txt"},
        "targets": {"a": {"format": "text"}}}
KEYS = ["schema", "name", "version", "description", "model", "framework", "entrypoint", "weights", "samples",
        "inputs", "dims", "calibration", "data", "targets", "a", "b", "format", "precision", "hardware",
        "pipeline", "from", "options", "text.normalize", "lowercase", "validation", "fp16", "rtol",
        "<<", "'<<'", "? [a]", "!!binary a", "!!python/name:x", "1", "~", "k" * 300, '"\\0"', "&k key", "*k"]
ODD = ["~", "null", "true", "no", "''", '""', ".inf", "-.nan", "0x1F", "0o17", "1_000", "1e400", "2001-12-14",
       "2001-12-14t21:59:43.10-05:00", "!!int abc", "!!float x", "!!timestamp nope", "!!binary aGk=",
       "!!binary a", "!!str 1", "!!bool maybe", "!!null x", "!!set {a, b}", "!!omap [a: 1]", "!!map x",
       "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!custom x", "'~'", "' '",
       "model.txt", "pkg.mod:fn", "model.txt:build", "../../etc/passwd", "/etc/passwd", "/dev/zero", ".",
       "sm86", "[sm86, sm89]", "h100", "cpu", "any", "fp16", "int8", "text", "text.bin", "text.pack",
       "text.stats", "[text.normalize]", "{min: 1, max: 2}", "{buckets: [1-8, 9-4]}",
       "[{name: x, dtype: float32, shape: [b, -1]}]", "&k [1, 2]", "*k", "&r [*r]", "*undefined",
       "{<<: {format: text}}", "[[[[]]]]", "1" * 5000, '"\\ud800"', '"\\0"', '"\\t"', "|\n  block"]
# What each key of a target (and the model) plausibly holds: most mutants get past loading.
PLAUSIBLE = {
    "format": ["text", "txt", "text.bin", "text.pack", "text.stats", "text.stamped", "text.spelling", "onnx",
               "nope"],
    "precision": ["fp32", "fp16", "bf16", "int8"],
    "hardware": ["cpu", "any", "sm86", "[sm86, sm89]", "h100", "cpu.cuda", "cpu-x86_64-avx512", "tpu", "[]"],
    "pipeline": ["[text.normalize]", "[text.normalize, text.ascii]", "[text.compile]", "[]", "[nope]",
                 "[text.normalize, text.normalize]"],
    "from": ["a", "b", "c", "nope"],
    "options": ["{text.normalize: {lowercase: true}}", "{text.normalize: {lowercase: 3}}", "{nope: {}}",
                "{text.compile: {optimize: 9}}", "{text.wordcount: {delay: -1}}", "{}"],
    "description": ["hello", "''", '"\\u00e9\\t"'],
    "weights": ["model.txt", "package:buildsys/__init__.py", "package:nope/x"],
    "samples": ["pkg.mod:fn", "model.txt:fn"],
    "inputs": ["[{name: x, dtype: float32, shape: [b, 3]}]", "[{name: x, dtype: int8, shape: [1], range: [0, 0]}]"],
    "dims": ["{b: {min: 1, max: 8}}", "{b: {buckets: [1-8, 9-64]}}", "{b: {min: 9, max: 1}}"],
}
HOSTILE = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.text(max_size=30).map(json.dumps),  # double-quoted: escapes of control characters, surrogates
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),  # raw, as typed
    st.sampled_from([254, 255, 256, 300, 1100]).map(lambda n: "x" * n),
    st.integers(30, 3000).map(lambda n: "[" * n + "]" * n),
)
SCALARS = st.one_of(st.sampled_from(ODD), HOSTILE)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
    st.dictionaries(st.sampled_from(KEYS), inner, max_size=4).map(
        lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}")), max_leaves=8)


@st.composite
def plausible_targets(draw) -> dict:
    """TREE with targets (and some model keys) drawn mostly from PLAUSIBLE, now and then from ODD."""
    tree = json.loads(json.dumps(TREE))
    targets = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)):
        keys = draw(st.lists(st.sampled_from(list(PLAUSIBLE)[:7]), max_size=4, unique=True))
        targets[name] = {"format": "text"} | {k: draw(_plausible(k)) for k in keys}
    tree["targets"] = targets
    for key in draw(st.lists(st.sampled_from(list(PLAUSIBLE)[7:]), max_size=2, unique=True)):
        tree["model"][key] = draw(_plausible(key))
    return tree


def _plausible(key: str):
    return st.one_of(*[st.sampled_from(PLAUSIBLE[key])] * 4, st.sampled_from(ODD))


def _paths(tree: dict, prefix=()) -> list[tuple]:
    found = []
    for key, value in tree.items():
        found.append(prefix + (key,))
        if isinstance(value, dict):
            found += _paths(value, prefix + (key,))
    return found


@st.composite
def mutated_trees(draw, values) -> dict:
    """TREE with one to three entries replaced, added or dropped."""
    tree = json.loads(json.dumps(TREE))
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        if not tree:
            break
        path = draw(st.sampled_from(_paths(tree)))
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "add", "drop"]))
        if action == "drop":
            parent.pop(path[-1], None)
        elif action == "add" and isinstance(parent.get(path[-1]), dict):
            parent[path[-1]][draw(st.sampled_from(KEYS))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return tree


def render(tree: dict, indent: int = 0) -> str:
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:" + ("" if value else " {}"))
            lines.append(render(value, indent + 2))
        else:
            lines.append(" " * indent + f"{key}: {value}")
    return "\n".join(line for line in lines if line) + ("\n" if indent == 0 else "")


BYTES = st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\t", b"\r", b"\n", b"\n  ", b" ", b"[", b"{", b"]", b"}",
                         b"&a ", b"*a", b"!!", b"!", b":", b": ", b"- ", b"? ", b'"', b"'", b"#", b"|", b">",
                         b"%YAML 1.1\n", b"---\n", b"...\n", b"\xef\xbb\xbf", b"\x1b", b"\xe2\x80\xa8"])


@st.composite
def manifests(draw) -> bytes:
    """Anything: hostile values anywhere, then sometimes a few edits of the raw bytes."""
    data = render(draw(mutated_trees(VALUES))).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(data)))
        cut = draw(st.integers(0, 4))
        data = data[:at] + draw(BYTES) * draw(st.integers(1, 3)) + data[at + cut:]
    return data


# The same examples on every run (a CI failure reproduces locally), none stored in .hypothesis/;
# 300 of each take about 5 s on two cores.
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_plan(project, text: bytes) -> None:
    """``buildsys plan`` on ``text`` never crashes, and refuses bad input at file:line:column."""
    path = project / "fuzzed.yaml"
    path.write_bytes(text)
    code, output = plan(path)
    assert code != 70, output
    if code == 2:
        assert re.search(re.escape(str(path)) + r":\d+:\d+: ", output), output


@FUZZ
@given(text=manifests())
def test_fuzzed_manifest_is_planned_or_refused_with_location(project, text):
    check_plan(project, text)


@FUZZ
@given(tree=plausible_targets())
def test_fuzzed_targets_are_planned_or_refused_with_location(project, tree):
    check_plan(project, render(tree).encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("entrypoint,words", [
    ("notes", "text model 'notes' does not exist"),
    ("model.txt:build", "it has no ':function' part"),
    ("os.path:join", "text model 'os.path:join' does not exist"),
    ("folder", "text model 'folder' is a folder"),
])
def test_text_entrypoint_that_is_no_readable_file(project, entrypoint, words):
    """Once exit 70 (FileNotFoundError, IsADirectoryError from hashing the model's files)."""
    (project / "folder").mkdir(exist_ok=True)
    path = project / "nofile.yaml"
    path.write_text(swap("entrypoint: model.txt", f"entrypoint: {entrypoint}"))
    code, output = plan(path)
    assert code == 2, output
    assert f"{path}:4:38: model.entrypoint: " in output and words in output, output
    assert "Traceback" not in output and "internal error" not in output, output
