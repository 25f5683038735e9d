"""User entrypoints are checked from their syntax tree at plan time, never imported there."""

from __future__ import annotations

import pytest

from buildsys import BuildsysError, entrypoint_files


@pytest.mark.parametrize("source", [
    "def build():\n    pass\n",
    "class build:\n    pass\n",
    "from models.zoo import resnet as build\n",
    "build = make_builder()\n",
    "try:\n    from fast import build\nexcept ImportError:\n    def build():\n        pass\n",
    "if True:\n    build: object = None\n",
])
def test_a_name_bound_at_top_level_is_found(tmp_path, source):
    (tmp_path / "m.py").write_text(source)
    assert tmp_path / "m.py" in entrypoint_files("m.py:build", tmp_path)


@pytest.mark.parametrize("source", [
    "from helpers import *\n",
    "def __getattr__(name):\n    return lambda: None\n",
    "globals()['build'] = lambda: None\n",
    "def broken(:\n",  # a syntax error: importing it reports the real error with its line
])
def test_a_module_that_may_bind_names_dynamically_is_left_to_import_time(tmp_path, source):
    (tmp_path / "m.py").write_text(source)
    assert tmp_path / "m.py" in entrypoint_files("m.py:build", tmp_path)


def test_a_missing_function_is_refused_with_a_suggestion(tmp_path):
    (tmp_path / "m.py").write_text("import torch\n\ndef build_model():\n    return torch.nn.Linear(2, 2)\n"
                                   "\ndef helper():\n    pass\n")
    with pytest.raises(BuildsysError) as caught:
        entrypoint_files("m.py:build_modle", tmp_path)
    assert "m.py has no function 'build_modle'" in caught.value.message
    assert caught.value.hint == "did you mean 'build_model'?"
    with pytest.raises(BuildsysError) as caught:
        entrypoint_files("m.py:zzz", tmp_path)
    assert caught.value.hint == "m.py defines: build_model, helper, torch"


def test_a_function_defined_only_inside_another_is_not_top_level(tmp_path):
    (tmp_path / "m.py").write_text("def outer():\n    def build():\n        pass\n    return build\n")
    with pytest.raises(BuildsysError, match="has no function 'build'"):
        entrypoint_files("m.py:build", tmp_path)


def test_a_module_entrypoint_is_checked_from_its_source_too(tmp_path, monkeypatch):
    package = tmp_path / "zoo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text("def small():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entrypoint_files("zoo_pkg.nets:small", tmp_path) == [package / "__init__.py", package / "nets.py"]
    with pytest.raises(BuildsysError, match="did you mean 'small'"):
        entrypoint_files("zoo_pkg.nets:smal", tmp_path)


def _tree(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_file_entrypoint_is_fingerprinted_by_what_it_imports_not_by_its_folder(tmp_path):
    _tree(tmp_path, {
        "models/net.py": "import torch\nimport layers\nfrom blocks import conv\n\ndef build():\n"
                         "    from heads import linear  # imported lazily: still the model's code\n",
        "models/layers.py": "import math\nfrom shared import util\n",
        "models/blocks/__init__.py": "", "models/blocks/conv.py": "X = 1\n",
        "models/heads.py": "", "models/shared.py": "", "models/unrelated.py": "print('not imported')\n",
        "models/notes.txt": "",
    })
    files = {p.relative_to(tmp_path).as_posix() for p in entrypoint_files("models/net.py:build", tmp_path)}
    assert files == {"models/net.py", "models/layers.py", "models/blocks/__init__.py", "models/blocks/conv.py",
                     "models/heads.py", "models/shared.py"}, "unrelated.py is not the model's code; torch/math are not user code"


def test_a_package_entrypoint_follows_its_imports_inside_the_package(tmp_path, monkeypatch):
    _tree(tmp_path, {
        "zoo/__init__.py": "", "zoo/nets/__init__.py": "from .resnet import build\n",
        "zoo/nets/resnet.py": "from ..ops import conv\nfrom . import blocks\nimport numpy\n\ndef build():\n    pass\n",
        "zoo/nets/blocks.py": "", "zoo/ops/__init__.py": "", "zoo/ops/conv.py": "", "zoo/other.py": "",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    files = {p.relative_to(tmp_path).as_posix() for p in entrypoint_files("zoo.nets.resnet:build", tmp_path)}
    assert files == {"zoo/nets/resnet.py", "zoo/__init__.py", "zoo/ops/__init__.py", "zoo/ops/conv.py",
                     "zoo/nets/__init__.py", "zoo/nets/blocks.py"}, "an edit anywhere it imports is seen; zoo/other.py is not"
