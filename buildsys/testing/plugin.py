"""The pytest plugin: fixtures for testing buildsys plugins and manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .models import TINY_TEXT_FILES, TINY_TORCH_FILES, tiny_text_manifest, tiny_torch_manifest
from .runner import ProjectDir


@pytest.fixture
def buildsys_project(tmp_path, monkeypatch) -> ProjectDir:
    """An isolated project folder; BUILDSYS_OUT and BUILDSYS_CACHE_DIR point inside it."""
    project = ProjectDir(tmp_path / "project")
    project.root.mkdir()
    for key, value in project.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(project.root)
    return project


@pytest.fixture
def buildsys_cli(buildsys_project):
    """``buildsys_cli("build", "manifest.yaml")`` runs the real CLI in the isolated project."""
    return buildsys_project.cli


@pytest.fixture
def tiny_manifest(buildsys_project):
    """``tiny_manifest({"portable": "{format: onnx}"}, framework="torch")`` writes a tiny model
    (``torch``: an 8 -> 16 -> 4 MLP, dynamic batch; ``text``: a two-line text file) and a
    manifest with those targets into the isolated project, and returns the manifest's path."""

    def write(targets: dict[str, str] | str, framework: str = "torch", name: str = "tiny") -> Path:
        if framework == "torch":
            return buildsys_project.manifest(tiny_torch_manifest(targets, name), files=TINY_TORCH_FILES)
        if framework == "text":
            return buildsys_project.manifest(tiny_text_manifest(targets, name), files=TINY_TEXT_FILES)
        raise ValueError(f"no tiny model for framework {framework!r}; there are: torch, text")

    return write
