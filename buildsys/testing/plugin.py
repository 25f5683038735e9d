"""The pytest plugin: fixtures for testing buildsys plugins and manifests."""

from __future__ import annotations

import pytest

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
