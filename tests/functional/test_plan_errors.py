"""Errors found by fault injection on the plan side: each is an expected error with its exit code,
a location where one exists (``file:line:col`` of the manifest key, or the lockfile's path) and
the fix, never an internal error (exit 70) or a message without a place.

The CLI runs in-process (``buildsys.cli.main``) in the isolated ``hello`` project, so these stay fast.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from buildsys import cli
from buildsys.errors import ManifestError
from buildsys.project import Project

HEAD = "schema: 1\nname: x\nversion: '1'\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``buildsys ARGV`` in this process: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_expected_error(err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err


# -- a target building from a refused target: the position of its from: ----------------------


def test_target_from_a_refused_target_points_at_its_from_key(hello, capsys):
    path = hello.write("from.yaml", HEAD + "model: {framework: text, entrypoint: model.txt}\n"
                       "targets:\n  a: {format: txet}\n  b: {format: text, from: a}\n")
    code, out, _ = run(capsys, "plan", str(path))
    assert code == 3, out
    assert f"refused    target 'b': {path}:7:27: target 'b' builds from target 'a', which was refused" in out, out
    code, _, err = run(capsys, "build", str(path))
    assert code == 3 and f"{path}:7:27: target 'b' builds from target 'a'" in err, err
    assert_expected_error(err)


# -- a torch entrypoint in the wrong form: model.entrypoint's position at plan time -------------


TORCH = ("model: {framework: torch, entrypoint: '%s', inputs: [{name: x, dtype: float32, shape: [1, 3]}]%s}\n"
         "targets: {a: {format: torch.exported}}\n")


@pytest.mark.parametrize("entrypoint", ["model.py", "model.py:", "sub/model.py"])
def test_torch_entrypoint_without_function_is_a_manifest_error_at_its_position(hello, capsys, entrypoint):
    pytest.importorskip("buildsys_torch")  # the plugin only: planning imports no torch
    hello.write("model.py", "def build():\n    return None\n")
    hello.write("sub/model.py", "def build():\n    return None\n")
    path = hello.write("torch.yaml", HEAD + TORCH % (entrypoint, ""))
    for command in ("plan", "build"):
        code, _, err = run(capsys, command, str(path))
        assert code == 2, err
        assert f"{path}:4:39: model.entrypoint: entrypoint '{entrypoint}' must be 'path/to/file.py:function'" in err, err
        assert_expected_error(err)
    assert not hello.out.exists() or not any(hello.out.iterdir())


def test_torch_samples_without_function_points_at_samples(hello, capsys):
    pytest.importorskip("buildsys_torch")
    hello.write("model.py", "def build():\n    return None\n")
    path = hello.write("torch.yaml", HEAD + TORCH % ("model.py:build", ", samples: model.py"))
    column = path.read_text().splitlines()[3].index("samples: ") + len("samples: ") + 1
    code, _, err = run(capsys, "plan", str(path))
    assert code == 2 and f"{path}:4:{column}: model.samples: entrypoint 'model.py' must be" in err, err
    assert_expected_error(err)


# -- a text entrypoint that is no readable file, through build too ------------------------------


def test_text_entrypoint_folder_is_refused_by_build_at_its_position(hello, capsys):
    (hello.root / "folder").mkdir()
    path = hello.write("folder.yaml", HEAD + "model: {framework: text, entrypoint: folder}\n"
                       "targets: {a: {format: text}}\n")
    code, _, err = run(capsys, "build", str(path))
    assert code == 2 and f"{path}:4:38: model.entrypoint: " in err and "is a folder" in err, err
    assert_expected_error(err)


# -- the core guard: any model file a source names that cannot be read ---------------------------


def source_digest_error(hello, files) -> str:
    """The error of ``Project.source_digest`` when the text source fingerprints ``files``."""
    project = Project(hello.root / "manifest.yaml")
    project.catalog.sources["text"] = replace(project.catalog.sources["text"], fingerprint=lambda model, root: files)
    with pytest.raises(ManifestError) as info:
        project.source_digest()
    return str(info.value)


def test_a_missing_or_folder_model_file_is_a_manifest_error_at_the_entrypoint(hello):
    (hello.root / "folder").mkdir()
    where = f"{hello.root / 'manifest.yaml'}:6:15"  # entrypoint: model.txt
    assert source_digest_error(hello, [hello.root / "gone.bin"]).startswith(
        f"{where}: model.entrypoint: cannot read gone.bin: No such file or directory")
    assert source_digest_error(hello, [hello.root / "model.txt", hello.root / "folder"]).startswith(
        f"{where}: model.entrypoint: cannot read folder: Is a directory")


def test_an_unreadable_weights_file_is_a_manifest_error_at_the_weights(hello, monkeypatch):
    weights = hello.write("w.bin", "0")
    path = hello.write("weights.yaml", HEAD + "model: {framework: text, entrypoint: model.txt, weights: w.bin}\n"
                       "targets: {a: {format: text}}\n")
    project = Project(path)
    project.catalog.sources["text"] = replace(project.catalog.sources["text"], fingerprint=lambda m, r: [weights])

    def refuse(file):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(project.store, "file_digest", refuse)
    with pytest.raises(ManifestError, match=r"weights.yaml:4:58: model.weights: cannot read w.bin: Permission denied"):
        project.source_digest()


# -- a lockfile that is TOML but not a lockfile: exit 4, its path, what is wrong, the fix -------


WRONG_LOCKS = [
    ("targets-integer", "targets = 5\n", "targets is an integer, expected a table"),
    ("nodes-integer", "nodes = 5\n", "nodes is an integer, expected a table"),
    ("target-nodes-integer", "[targets.a]\nnodes = 5\nfiles = []\n", "targets.a.nodes is an integer, expected a list"),
    ("target-without-files", "[targets.a]\nnodes = []\n", "targets.a has no files"),
    ("target-not-table", "[targets]\na = 'x'\n", "targets.a is a string, expected a table"),
    ("node-not-table", "[nodes]\nb = 5\n", "nodes.b is an integer, expected a table"),
    ("node-id-quoted", "[nodes]\n\"text.normalize#1\" = [1]\n", 'nodes."text.normalize#1" is a list, expected a table'),
    ("target-node-id-integer", "[targets.a]\nnodes = ['n', 3]\nfiles = []\n", "targets.a.nodes[1] is an integer, expected a string"),
    ("file-without-sha256", "[targets.a]\nnodes = []\nfiles = [{name = 'f', size = 1}]\n", "targets.a.files[0] has no sha256"),
    ("file-size-string", "[targets.a]\nnodes = []\nfiles = [{name = 'f', sha256 = 'aa', size = '1'}]\n",
     "targets.a.files[0].size is a string, expected an integer"),
    ("output-not-table", "[nodes.n]\noutputs = [5]\n", "nodes.n.outputs[0] is an integer, expected a table"),
    ("action-key-integer", "[nodes.n]\naction_key = 5\n", "nodes.n.action_key is an integer, expected a string"),
    ("digest-list", "[nodes.n]\ndigest = []\n", "nodes.n.digest is a list, expected a string"),
    ("schema-true", "", "schema true"),
]


@pytest.mark.parametrize("body,problem", [c[1:] for c in WRONG_LOCKS], ids=[c[0] for c in WRONG_LOCKS])
@pytest.mark.parametrize("command", [["build"], ["build", "--locked"], ["build", "--frozen"], ["verify"]],
                         ids=["build", "locked", "frozen", "verify"])
def test_lockfile_of_the_wrong_shape_is_a_lock_mismatch(hello, capsys, body, problem, command):
    lock = hello.root / "manifest.lock"
    lock.write_text(("schema = true\n" if problem == "schema true" else "schema = 1\n") + body)
    code, _, err = run(capsys, *command, "manifest.yaml")
    assert code == 4, err
    assert "lockfile manifest.lock " in err and problem in err and "delete it" in err, err
    assert_expected_error(err)
    assert not hello.out.exists() or not any(p.name != ".cache" for p in hello.out.iterdir())


def test_every_problem_of_a_lockfile_is_listed(hello, capsys):
    (hello.root / "manifest.lock").write_text("schema = 1\n[targets.a]\nnodes = 5\n[nodes]\nb = 5\n")
    code, _, err = run(capsys, "verify", "manifest.yaml")
    assert code == 4 and "targets.a.nodes is an integer" in err and "targets.a has no files" in err \
        and "nodes.b is an integer" in err, err


# -- a from: chain as long as the manifest allows, children listed first ------------------------


def test_a_from_chain_of_1000_targets_listed_children_first_is_planned(hello, capsys):
    """Ordering the targets recursed once per from: link: RecursionError, exit 70."""
    targets = [f"  t{i}: {{format: text, precision: int8, pipeline: [text.ascii], from: t{i - 1}}}"
               for i in range(999, 0, -1)]
    path = hello.write("deep.yaml", HEAD + "model: {framework: text, entrypoint: model.txt}\ntargets:\n"
                       + "\n".join(targets) + "\n  t0: {format: text}\n")
    code, out, err = run(capsys, "plan", str(path))
    assert code == 0, err
    assert out.splitlines()[-1] == "0 cached, 1000 to build, 0 refused"
